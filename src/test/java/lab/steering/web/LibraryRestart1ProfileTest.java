package lab.steering.web;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.io.IOException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * First half of "build an operator and find it in the library after an app restart": in the browser, builds an
 * operator on the Operators page and writes its name and address to {@link #MARKER}.
 * {@link LibraryRestart2ProfileTest} runs next in a new JVM (this fork is not reused), so a new app start on the
 * same database, and finds it there. Both are *ProfileTest classes: the quarkus-profile-tests execution runs each in
 * a fork of its own, in alphabetical order.
 */
@QuarkusTest
@TestProfile(LibraryRestart1ProfileTest.Fresh.class)
@QuarkusTestResource(TestModels.class)
@Tag("browser")
class LibraryRestart1ProfileTest {

    static final Path MARKER = Path.of("target", "library-restart.txt");

    /** A clean database (as every test app start), under a profile of its own: an app start of its own. */
    public static class Fresh implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("quarkus.flyway.clean-at-start", "true");
        }
    }

    @TestHTTPResource("/")
    URL base;

    @Test
    void buildAnOperatorInTheBrowser() throws IOException {
        Files.deleteIfExists(MARKER);
        String name = "restart check " + System.nanoTime();
        try (Chromium c = Chromium.start(1280, 900)) {
            c.driver.get(base.toString().replaceAll("/$", "") + "/operators");
            WebElement field = c.driver.findElement(By.cssSelector("#build input[name=name]"));
            field.clear();
            field.sendKeys(name);
            new Select(c.driver.findElement(By.cssSelector("#build select[name=model]")))
                    .selectByValue(SharedModels.STORIES_TEXT);
            WebElement concept = c.driver.findElement(By.cssSelector("#build textarea[name=conceptPrompt]"));
            concept.clear();
            concept.sendKeys("The rain fell on the roof all night");
            c.driver.findElement(By.id("build-button")).click();
            WebElement created = new WebDriverWait(c.driver, Duration.ofSeconds(120))
                    .until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#created a")));
            String href = created.getAttribute("href");
            assertTrue(href.matches(".*/operators/\\d+"), href);
            c.shot("restart-1-built");
            Files.writeString(MARKER, name + "\n" + href.replaceAll(".*(/operators/\\d+)$", "$1") + "\n");
        }
    }
}
