package lab.steering.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.io.IOException;
import java.net.URL;
import java.util.List;
import lab.steering.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.support.ui.ExpectedConditions;

/**
 * The comparison page in headless Chromium, as a user: tick three models of three families
 * ({@link TestModels#compareModels()}: tiny Llama, Qwen 3 and Gemma 3 checkpoints), type prompts, compare, wait for the job,
 * read the stable-rank distributions and the decoded tokens side by side, pick another prompt, reopen the bookmark.
 * Shares {@link BrowserTest}'s driver set-up; skipped the same way where the browser is missing.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
@Tag("browser")
class CompareBrowserTest {

    @TestHTTPResource("/")
    URL base;

    @BeforeAll
    static void start() throws IOException {
        BrowserTest.start();
    }

    @AfterAll
    static void stop() throws IOException {
        BrowserTest.stop();
    }

    String url(String path) {
        return base.toString().replaceAll("/$", "") + path;
    }

    @Test
    void compareThreeModelsAndReadTheDistributionsAndDecodedTokens() throws IOException {
        var driver = BrowserTest.driver;
        List<String> models = TestModels.compareModels();
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.get(url("/compare"));
        for (String m : models) {
            driver.findElement(By.cssSelector("#compare input[name=models][value='" + m + "']")).click();
        }
        driver.findElement(By.cssSelector("#compare input[name=batch][value=given]")).click();
        BrowserTest.type(By.cssSelector("#compare textarea[name=prompts]"), "t1 t2 t3\nt4 t5\nt6 t7 t8 t9");
        BrowserTest.type(By.cssSelector("#compare input[name=vectors]"), "2");
        driver.findElement(By.id("compare-button")).click();
        BrowserTest.waiting(180).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#result.done")));
        String bookmark = driver.getCurrentUrl();
        assertTrue(bookmark.matches(".*/compare/\\d+$"), bookmark);
        assertEquals(3 * models.size(),
                driver.findElements(By.cssSelector("svg#rank-distribution circle.point")).size(),
                "one point per prompt and model");
        for (String m : models) {
            assertFalse(driver.findElements(By.cssSelector("svg#rank-distribution rect.bar[data-label^='" + m
                    + " median']")).isEmpty(), m + " has a median");
            assertFalse(driver.findElements(By.cssSelector("#side-by-side th[data-model='" + m + "']")).isEmpty());
        }
        List<WebElement> decoded = driver.findElements(By.cssSelector("#side-by-side tr.u-combined code.dtok"));
        assertFalse(decoded.isEmpty(), "decoded singular vectors side by side");
        BrowserTest.shot("compare-result");
        driver.manage().window().setSize(new Dimension(390, 900));
        BrowserTest.shot("compare-result-390");
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.findElement(By.cssSelector("#prompts tr[data-prompt='2'] a")).click();
        BrowserTest.waiting(30).until(ExpectedConditions.presenceOfElementLocated(
                By.cssSelector("#side-by-side[data-prompt='2']")));
        assertTrue(driver.getCurrentUrl().contains("?p=2"), driver.getCurrentUrl());
        driver.get(bookmark);
        assertEquals(3 * models.size(),
                driver.findElements(By.cssSelector("svg#rank-distribution circle.point")).size(), "the bookmark");
        driver.get(url("/compare"));
        assertFalse(driver.findElements(By.cssSelector("#comparisons a[href$='"
                + bookmark.replaceAll(".*/compare/", "/compare/") + "']")).isEmpty(), "listed");
        BrowserTest.shot("compare-form");
    }
}
