package lab.steering.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.io.IOException;
import java.net.URL;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import lab.steering.TestModels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.WebElement;

/**
 * Second half of the restart check (see {@link LibraryRestart1ProfileTest}): a new app start that keeps the
 * database finds the operator built before in the library, by its name, and opens it at its address.
 */
@QuarkusTest
@TestProfile(LibraryRestart2ProfileTest.KeepDatabase.class)
@QuarkusTestResource(TestModels.class)
@Tag("browser")
class LibraryRestart2ProfileTest {

    /** The database as the first half left it: no clean at start. */
    public static class KeepDatabase implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("quarkus.flyway.clean-at-start", "false");
        }
    }

    @TestHTTPResource("/")
    URL base;

    @Test
    void theOperatorIsInTheLibraryAfterTheRestart() throws IOException {
        Assumptions.assumeTrue(Files.isRegularFile(LibraryRestart1ProfileTest.MARKER),
                "skipped: LibraryRestart1ProfileTest did not run before (it writes " + LibraryRestart1ProfileTest.MARKER + ")");
        List<String> lines = Files.readAllLines(LibraryRestart1ProfileTest.MARKER);
        Files.delete(LibraryRestart1ProfileTest.MARKER);
        String name = lines.get(0);
        String path = lines.get(1);
        String root = base.toString().replaceAll("/$", "");
        try (Chromium c = Chromium.start(1280, 900)) {
            c.driver.get(root + "/operators?q=" + URLEncoder.encode(name, StandardCharsets.UTF_8));
            List<WebElement> rows = c.driver.findElements(By.cssSelector("#operators tr[data-operator]"));
            assertEquals(1, rows.size(), "the library filtered by the operator's name");
            assertTrue(rows.get(0).getText().contains(name), rows.get(0).getText());
            c.shot("restart-2-library");
            rows.get(0).findElement(By.cssSelector("a[href='" + path + "']")).click();
            assertEquals(name, c.driver.findElement(By.id("op-name")).getText());
            assertTrue(c.driver.getCurrentUrl().endsWith(path), c.driver.getCurrentUrl());
        }
    }
}
