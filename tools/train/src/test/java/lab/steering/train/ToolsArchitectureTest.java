package lab.steering.train;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

/**
 * The training tool is built on the app's core (model, hook, generate, jacobian, steer, eval) and on nothing of the
 * app around it: no HTTP, database, services or configuration, and not on the benchmarks.
 */
class ToolsArchitectureTest {

    @Test
    void trainingUsesOnlyTheCore() {
        JavaClasses classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("lab.steering.train");
        noClasses().that().resideInAPackage("lab.steering.train..").should().dependOnClassesThat()
                .resideInAnyPackage("io.quarkus..", "jakarta..", "org.hibernate..", "lab.steering.web..",
                        "lab.steering.service..", "lab.steering.store..", "lab.steering.config..",
                        "lab.steering.bench..")
                .check(classes);
    }
}
