package lab.steering.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.io.IOException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The pages in headless Chromium (Debian's /usr/bin/chromium and /usr/bin/chromedriver), acting as a user: analyze a
 * prompt, steer, make an input error; screenshots of every page at laptop and narrow widths in target/screenshots/.
 * Skipped, with a message, where the browser or the driver is missing.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
@Tag("browser")
class BrowserTest {

    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final Path SHOTS = Path.of("target/screenshots");

    static Chromium browser;
    static WebDriver driver;

    @TestHTTPResource("/")
    URL base;

    @BeforeAll
    static void start() throws IOException {
        browser = Chromium.start(1280, 900);
        driver = browser.driver;
        Files.createDirectories(SHOTS);
    }

    @AfterAll
    static void stop() throws IOException {
        if (browser != null) {
            browser.close();
        }
        browser = null;
        driver = null;
    }

    String url(String path) {
        return base.toString().replaceAll("/$", "") + path;
    }

    /** A screenshot of the whole page (the window is made as tall as the page, then restored). */
    static void shot(String name) throws IOException {
        Dimension size = driver.manage().window().getSize();
        Object h = ((org.openqa.selenium.JavascriptExecutor) driver)
                .executeScript("return document.documentElement.scrollHeight");
        int height = Math.min(8000, Math.max(size.getHeight(), ((Number) h).intValue() + 120));
        driver.manage().window().setSize(new Dimension(size.getWidth(), height));
        Path tmp = ((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE).toPath();
        Files.copy(tmp, SHOTS.resolve(name + ".png"), StandardCopyOption.REPLACE_EXISTING);
        driver.manage().window().setSize(size);
    }

    static WebDriverWait waiting(int seconds) {
        return new WebDriverWait(driver, Duration.ofSeconds(seconds));
    }

    static void type(By by, String text) {
        WebElement e = driver.findElement(by);
        e.clear();
        e.sendKeys(text);
    }

    /** Back restores the library filter the address names (htmx keeps the page as it was when it was left). */
    @Test
    void backRestoresTheLibraryFilterItsAddressNames() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        driver.get(url("/operators"));
        new Select(driver.findElement(By.id("filter-model"))).selectByValue(SharedModels.STORIES_TEXT);
        waiting(30).until(d -> d.getCurrentUrl().contains("model=" + SharedModels.STORIES_TEXT));
        new Select(driver.findElement(By.id("filter-model"))).selectByValue(SharedModels.STORIES);
        waiting(30).until(d -> d.getCurrentUrl().contains("model=" + SharedModels.STORIES + "&"));
        driver.navigate().back();
        waiting(30).until(d -> d.getCurrentUrl().contains("model=" + SharedModels.STORIES_TEXT));
        waiting(30).until(d -> SharedModels.STORIES_TEXT.equals(new Select(d.findElement(By.id("filter-model")))
                .getFirstSelectedOption().getAttribute("value")));
    }

    @Test
    void analyzeAPromptAndSeeTheSpectraAndDecodedTokens() throws IOException {
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.get(url("/analyze"));
        new Select(driver.findElement(By.cssSelector("#analyze select[name=model]"))).selectByValue(SharedModels.STORIES_TEXT);
        type(By.cssSelector("#analyze textarea[name=prompt]"), "Once upon a time, there was a dog");
        driver.findElement(By.id("analyze-button")).click();
        waiting(120).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#job.done")));
        assertTrue(driver.getCurrentUrl().contains("/analyze?job="), driver.getCurrentUrl());
        List<WebElement> points = driver.findElements(By.cssSelector("svg#spectra circle.point"));
        assertFalse(points.isEmpty(), "the spectra chart has points");
        assertFalse(driver.findElements(By.cssSelector("svg#reconstruction rect.bar")).isEmpty());
        List<WebElement> decoded = driver.findElements(By.cssSelector("#decoded details[open] code.dtok"));
        assertFalse(decoded.isEmpty(), "the last token's singular vectors are decoded");
        // "whole words only" is on by default: the word lists show, every-token lists do not; off, the reverse
        By words = By.cssSelector("#decoded details[open] .word-tokens code.dtok");
        By all = By.cssSelector("#decoded details[open] .all-tokens code.dtok");
        assertTrue(driver.findElement(By.id("words-only")).isSelected());
        assertTrue(driver.findElements(all).stream().noneMatch(WebElement::isDisplayed), "every-token lists hidden");
        List<WebElement> shown = driver.findElements(words).stream().filter(WebElement::isDisplayed).toList();
        assertFalse(shown.isEmpty(), "whole words shown");
        for (WebElement w : shown) {
            assertTrue(w.getText().strip().matches("\\p{L}+"), "a whole word: [" + w.getText() + "]");
        }
        driver.findElement(By.cssSelector("label[for=words-only]")).click();
        assertFalse(driver.findElement(By.id("words-only")).isSelected());
        assertTrue(driver.findElements(words).stream().noneMatch(WebElement::isDisplayed), "word lists hidden");
        assertEquals(8L * driver.findElements(By.cssSelector("#decoded details[open] .all-tokens")).size(),
                driver.findElements(all).stream().filter(WebElement::isDisplayed).count(),
                "8 tokens per list, as the API returns them");
        assertFalse(driver.findElements(By.cssSelector("#layer-sweep tr[data-layer]")).isEmpty());
        shot("analyze-result");
        driver.manage().window().setSize(new Dimension(390, 900));
        shot("analyze-result-390");
    }

    @Test
    void steerAndSeeBothContinuations() throws IOException {
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.get(url("/steer"));
        new Select(driver.findElement(By.cssSelector("#steer select[name=model]"))).selectByValue(SharedModels.STORIES_TEXT);
        driver.findElement(By.cssSelector("#steer input[name=source][value=vector]")).click();
        type(By.cssSelector("#steer input[name=conceptPrompt]"), "The dog barked");
        type(By.cssSelector("#steer textarea[name=prompt]"), "Once upon a time");
        type(By.cssSelector("#steer input[name=strength]"), "6");
        type(By.cssSelector("#steer input[name=maxNewTokens]"), "12");
        driver.findElement(By.id("steer-button")).click();
        waiting(120).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#steered .tok")));
        assertFalse(driver.findElements(By.cssSelector("#normal .tok")).isEmpty());
        assertFalse(driver.findElements(By.cssSelector("#steered .tok")).isEmpty());
        assertTrue(driver.findElement(By.cssSelector("a.run-link")).getAttribute("href").matches(".*/runs/\\d+"));
        shot("steer-result");
        driver.manage().window().setSize(new Dimension(390, 900));
        shot("steer-result-390");
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.findElement(By.cssSelector("a.run-link")).click();
        waiting(30).until(ExpectedConditions.presenceOfElementLocated(By.id("diagnostics")));
        shot("run-detail");
    }

    /** A vector saved in the library (POST /api/vectors) is listed beside the operators and steers from the page. */
    @Test
    void steerWithASavedVectorFromTheLibrary() throws IOException {
        SharedModels.require(SharedModels.STORIES_TEXT);
        long id = io.restassured.RestAssured.given().contentType(io.restassured.http.ContentType.JSON)
                .body(java.util.Map.of("name", "browser dog vector", "model", SharedModels.STORIES_TEXT,
                        "conceptPrompt", "The dog barked at the cat", "layers", List.of(3, 4)))
                .post("/api/vectors").then().statusCode(201).extract().jsonPath().getLong("id");
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.get(url("/operators"));
        new Select(driver.findElement(By.id("filter-kind"))).selectByValue("vector");
        waiting(30).until(d -> d.getCurrentUrl().contains("kind=vector"));
        waiting(30).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#operators tr[data-vector='" + id
                + "']")));
        assertTrue(driver.findElements(By.cssSelector("#operators tr[data-operator]")).isEmpty(), "vectors only");
        assertTrue(driver.findElement(By.cssSelector("#operators tr[data-vector='" + id + "']")).getText()
                .contains("3, 4"));
        shot("operators-vectors");
        driver.get(url("/steer"));
        new Select(driver.findElement(By.cssSelector("#steer select[name=model]"))).selectByValue(SharedModels.STORIES_TEXT);
        driver.findElement(By.cssSelector("#steer input[name=source][value=savedVector]")).click();
        new Select(driver.findElement(By.cssSelector("#steer select[name=vectorId]"))).selectByValue(Long.toString(id));
        type(By.cssSelector("#steer textarea[name=prompt]"), "Once upon a time");
        type(By.cssSelector("#steer input[name=strength]"), "6");
        type(By.cssSelector("#steer input[name=maxNewTokens]"), "12");
        driver.findElement(By.id("steer-button")).click();
        waiting(120).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#steered .tok")));
        assertTrue(driver.getCurrentUrl().contains("vector=" + id), driver.getCurrentUrl());
        String run = driver.findElement(By.cssSelector("a.run-link")).getAttribute("href");
        assertTrue(run.matches(".*/runs/\\d+"), run);
        io.restassured.RestAssured.given().get("/api/runs/" + run.replaceAll(".*/", "")).then().statusCode(200)
                .body("request.vectorId", org.hamcrest.Matchers.equalTo((int) id));
        shot("steer-saved-vector");
        // the pushed address opens the same form, the saved vector chosen
        driver.get(driver.getCurrentUrl());
        assertTrue(driver.findElement(By.cssSelector("#steer input[name=source][value=savedVector]")).isSelected());
        assertEquals(Long.toString(id), new Select(driver.findElement(By.cssSelector("#steer select[name=vectorId]")))
                .getFirstSelectedOption().getAttribute("value"));
    }

    @Test
    void aBadFieldShowsItsMessageNextToIt() throws IOException {
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.get(url("/steer"));
        driver.findElement(By.cssSelector("#steer input[name=source][value=vector]")).click();
        type(By.cssSelector("#steer input[name=strength]"), "lots");
        driver.findElement(By.id("steer-button")).click();
        WebElement err = waiting(60).until(ExpectedConditions.visibilityOfElementLocated(
                By.cssSelector("#steer .field-error[data-field=strength]")));
        assertTrue(err.getText().contains("strength"), err.getText());
        shot("steer-error");
    }

    @Test
    void buildAnOperatorThenSweepIt() throws IOException {
        driver.manage().window().setSize(new Dimension(1280, 900));
        driver.get(url("/operators"));
        type(By.cssSelector("#build input[name=name]"), "browser dog");
        new Select(driver.findElement(By.cssSelector("#build select[name=model]"))).selectByValue(SharedModels.STORIES_TEXT);
        type(By.cssSelector("#build textarea[name=conceptPrompt]"), "The dog barked at the cat");
        new Select(driver.findElement(By.cssSelector("#build select[name=form]"))).selectByValue("lowrank");
        type(By.cssSelector("#build input[name=rank]"), "4");
        driver.findElement(By.id("build-button")).click();
        WebElement created = waiting(120).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#created a")));
        String href = created.getAttribute("href");
        assertTrue(href.matches(".*/operators/\\d+"), href);
        // the library below refreshes itself (HX-Trigger operators-changed)
        waiting(30).until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#operators tr[data-operator]")));
        shot("operators-built");
        driver.get(href);
        assertTrue(driver.findElement(By.id("op-name")).getText().contains("browser dog"));
        shot("operator-detail");
        String id = href.replaceAll(".*/", "");
        driver.get(url("/sweep?operator=" + id));
        type(By.cssSelector("#sweep input[name=strengths]"), "0, 4");
        type(By.cssSelector("#sweep input[name=layers]"), "2, 3");
        type(By.cssSelector("#sweep input[name=maxNewTokens]"), "6");
        driver.findElement(By.id("sweep-button")).click();
        waiting(120).until(ExpectedConditions.presenceOfElementLocated(By.id("sweep-grid")));
        assertTrue(driver.findElements(By.cssSelector("#sweep-grid td.cell")).size() == 4);
        shot("sweep-result");
    }

    @Test
    void everyPageRendersAtLaptopAndNarrowWidths() throws IOException {
        for (String page : List.of("", "analyze", "operators", "steer", "sweep", "runs", "compare", "models")) {
            String name = page.isEmpty() ? "home" : page;
            for (int width : new int[]{1280, 390}) {
                driver.manage().window().setSize(new Dimension(width, 900));
                driver.get(url("/" + page));
                assertFalse(driver.findElements(By.cssSelector("header.top nav a[href='/runs']")).isEmpty(), name);
                shot(name + "-" + width);
            }
        }
    }
}
