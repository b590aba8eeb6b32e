package lab.steering;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The package graph of the README ("How it is built"), checked on the compiled classes: the core is plain Java on
 * DJL, imports go one way (hook <- model <- generate, jacobian <- steer <- eval <- service <- web), and nothing of
 * the app holds the training pipeline or the benchmarks (the Maven projects tools/train and tools/bench, whose own
 * ToolsArchitectureTest checks what they use of the app).
 */
class ArchitectureTest {

    private static final String[] CORE = {"lab.steering.hook..", "lab.steering.model..", "lab.steering.generate..",
            "lab.steering.jacobian..", "lab.steering.steer..", "lab.steering.eval.."};

    private static JavaClasses classes;

    @BeforeAll
    static void importClasses() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("lab.steering");
    }

    @Test
    void coreKnowsNothingOfHttpDatabaseOrTheApp() {
        ArchRule rule = noClasses().that().resideInAnyPackage(CORE).should().dependOnClassesThat()
                .resideInAnyPackage("io.quarkus..", "jakarta..", "javax.ws..", "org.hibernate..", "io.vertx..",
                        "org.jboss.resteasy..", "lab.steering.web..", "lab.steering.service..",
                        "lab.steering.store..", "lab.steering.config..");
        rule.check(classes);
    }

    @Test
    void importsGoOneWay() {
        layer("lab.steering.hook..", "model", "generate", "jacobian", "steer", "eval", "service", "web", "store");
        layer("lab.steering.model..", "generate", "jacobian", "steer", "eval", "service", "web", "store");
        layer("lab.steering.generate..", "jacobian", "steer", "eval", "service", "web", "store");
        layer("lab.steering.jacobian..", "generate", "steer", "eval", "service", "web", "store");
        layer("lab.steering.steer..", "eval", "service", "web", "store");
        layer("lab.steering.eval..", "service", "web", "store");
        layer("lab.steering.service..", "web");
        layer("lab.steering.store..", "service", "web", "model", "generate", "jacobian", "steer", "eval");
    }

    @Test
    void theAppHoldsNoTrainingOrBenchmarks() {
        noClasses().should().resideInAnyPackage("lab.steering.train..", "lab.steering.bench..")
                .because("training and benchmarks are the Maven projects tools/train and tools/bench")
                .check(classes);
    }

    @Test
    void noPackageCycles() {
        slices().matching("lab.steering.(*)..").should().beFreeOfCycles().check(classes);
    }

    @Test
    void webOnlyTranslates() {
        noClasses().that().resideInAPackage("lab.steering.web..").and().haveSimpleNameEndingWith("Page").should()
                .dependOnClassesThat().haveSimpleNameEndingWith("Resource")
                .because("pages call the services (and the views they share with the resources), never a resource")
                .check(classes);
        noClasses().that().resideInAPackage("lab.steering.web..").should().dependOnClassesThat()
                .haveSimpleNameEndingWith("Library").orShould().dependOnClassesThat()
                .haveSimpleNameEndingWith("Store").orShould().dependOnClassesThat()
                .haveSimpleName("LibrarySearch")
                .because("the repositories are the services' (web/ may name the records they return)")
                .check(classes);
    }

    @Test
    void serviceFeaturesHaveNoCycles() {
        slices().matching("lab.steering.service.(*)..").should().beFreeOfCycles().check(classes);
    }

    private static void layer(String pkg, String... forbidden) {
        String[] packages = new String[forbidden.length];
        for (int i = 0; i < forbidden.length; i++) {
            packages[i] = "lab.steering." + forbidden[i] + "..";
        }
        noClasses().that().resideInAPackage(pkg).should().dependOnClassesThat().resideInAnyPackage(packages)
                .because("imports go one way: hook <- model <- generate, jacobian <- steer <- eval <- service <- web")
                .check(classes);
    }
}
