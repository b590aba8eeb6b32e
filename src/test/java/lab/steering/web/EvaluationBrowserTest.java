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
import lab.steering.SharedModels;
import lab.steering.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.Select;

/**
 * The evaluations page in headless Chromium, as a user: start a small run of the default suite on stories260K-text
 * (skipped when absent), watch it finish, read the per-method table and the concept-vs-fluency plot (one point per
 * method and strength, the chosen ones ringed), read an output beside its unsteered text, pick another concept, and
 * find the run in the list. Shares {@link BrowserTest}'s driver set-up; skipped the same way where the browser is
 * missing.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
@Tag("browser")
class EvaluationBrowserTest {

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
    void startASmallRunAndReadItsTablePlotAndOutputs() throws IOException {
        SharedModels.require(SharedModels.STORIES_TEXT);
        var driver = BrowserTest.driver;
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.get(url("/evaluations"));
        new Select(driver.findElement(By.cssSelector("#evaluate select[name=model]"))).selectByValue("stories260K-text");
        BrowserTest.type(By.cssSelector("#evaluate input[name=concepts]"), "2");
        BrowserTest.type(By.cssSelector("#evaluate input[name=prompts]"), "3");
        BrowserTest.type(By.cssSelector("#evaluate input[name=strengths]"), "1, 3");
        BrowserTest.type(By.cssSelector("#evaluate input[name=maxNewTokens]"), "6");
        driver.findElement(By.id("evaluate-button")).click();
        BrowserTest.waiting(240).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#result.done")));
        String bookmark = driver.getCurrentUrl();
        assertTrue(bookmark.matches(".*/evaluations/\\d+$"), bookmark);

        List<String> methods = driver.findElements(By.cssSelector("#methods-table tbody tr")).stream()
                .map(r -> r.getAttribute("data-method")).toList();
        assertEquals(List.of("none", "prompting", "actadd", "operator", "operator-lowrank"), methods);
        for (String m : List.of("actadd", "operator", "operator-lowrank")) {
            String strength = driver.findElement(By.cssSelector("#methods-table tr[data-method='" + m
                    + "'] td.strength")).getText();
            assertTrue(List.of("1.0", "3.0").contains(strength), m + " chose " + strength);
        }
        // none and prompting one point each, three steered methods two strengths each; five chosen ones ringed
        assertEquals(8, driver.findElements(By.cssSelector("svg#tradeoff g.series:not([data-name='chosen'])"
                + " circle.point")).size());
        assertEquals(5, driver.findElements(By.cssSelector("svg#tradeoff g.series[data-name='chosen'] circle.point"))
                .size());

        List<WebElement> rows = driver.findElements(By.cssSelector("#outputs tbody tr"));
        assertFalse(rows.isEmpty(), "outputs of concept 0, prompt 0");
        String unsteered = driver.findElement(By.cssSelector("#outputs tr[data-method='none'] td.text")).getText();
        for (WebElement r : rows) {
            assertEquals(unsteered, r.findElement(By.cssSelector("td.unsteered")).getText(),
                    "every output beside the unsteered text");
        }
        BrowserTest.shot("evaluation-result");
        driver.findElement(By.cssSelector("a[data-concept='1']")).click();
        BrowserTest.waiting(30).until(ExpectedConditions.presenceOfElementLocated(
                By.cssSelector("#outputs[data-concept='1']")));
        driver.get(url("/evaluations"));
        assertFalse(driver.findElements(By.cssSelector("#evaluations a[href$='"
                + bookmark.replaceAll(".*/evaluations/", "/evaluations/") + "']")).isEmpty(), "listed");
    }
}
