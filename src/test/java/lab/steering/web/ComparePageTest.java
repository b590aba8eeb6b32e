package lab.steering.web;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import lab.steering.TestModels;
import org.junit.jupiter.api.Test;

/** The /compare pages without a browser: the form, the stored comparison's charts and tables, errors, escaping. */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class ComparePageTest {

    static final List<String> MODELS = TestModels.compareModels();
    static final String SCRIPT = "<script>alert(1)</script>";

    static int count(String html, String needle) {
        int n = 0;
        for (int i = html.indexOf(needle); i >= 0; i = html.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }

    @Test
    void theFormListsTheModelsAndTheNavLinksTheComparePage() {
        given().get("/compare").then().statusCode(200)
                .body(containsString("href=\"/compare\""), containsString("id=\"compare\""),
                        containsString("name=\"models\" value=\"" + MODELS.get(0) + "\""),
                        containsString("the 100 everyday phrases"));
    }

    @Test
    void aSubmittedBatchGetsItsOwnPageWithDistributionsAndDecodedTokensSideBySide() throws InterruptedException {
        var post = given().redirects().follow(false).contentType("application/x-www-form-urlencoded")
                .formParam("models", MODELS.get(0)).formParam("models", MODELS.get(1)).formParam("models", MODELS.get(2))
                .formParam("batch", "given").formParam("prompts", "t1 t2 t3\n\nt4 t5\n" + SCRIPT + " t6\n")
                .formParam("dtype", "float32").formParam("topK", "4").formParam("vectors", "2")
                .post("/compare");
        assertEquals(303, post.statusCode());
        String location = post.header("Location");
        Matcher m = Pattern.compile("/compare/(\\d+)$").matcher(location);
        assertTrue(m.find(), location);
        String page = "/compare/" + m.group(1);
        String html = "";
        long end = System.currentTimeMillis() + 120_000;
        while (System.currentTimeMillis() < end) {
            html = given().get(page + "?p=2").then().statusCode(200).extract().asString();
            if (html.contains("id=\"summary\"")) {
                break;
            }
            assertTrue(html.contains("id=\"result\" class=\"running\""), "polls while it runs");
            Thread.sleep(200);
        }
        assertTrue(html.contains("id=\"rank-distribution\""), "the stable-rank distribution chart");
        assertEquals(9 * 2, count(html, "<circle class=\"point\" cx=") - countSpectraPoints(html),
                "one point per prompt and model in each distribution chart");
        assertTrue(html.contains("data-label=\"" + MODELS.get(1) + " median"), "a median bar per model");
        assertTrue(html.contains("id=\"side-by-side\" data-prompt=\"2\""), "?p=2 picks the third prompt");
        for (String model : MODELS) {
            assertTrue(html.contains("<th data-model=\"" + model + "\">"), model + " has a column");
        }
        assertEquals(2, count(html, "<tr class=\"u-combined\""), "vectors = 2: two rows of decoded combined u");
        assertTrue(html.contains("class=\"dtok\""), "decoded tokens");
        assertTrue(html.contains("&lt;script&gt;"), "the prompt is escaped");
        assertTrue(!html.contains(SCRIPT), "never raw");
        given().get("/compare").then().statusCode(200).body(containsString("href=\"" + page + "\""));
    }

    /** Points of the spectrum-shape chart (lines with marks), which are not distribution points. */
    static int countSpectraPoints(String html) {
        int from = html.indexOf("id=\"spectra\"");
        int to = html.indexOf("</svg>", from);
        return count(html.substring(from, to), "<circle class=\"point\" cx=");
    }

    @Test
    void aBadFieldIsShownNextToItAndAnUnknownComparisonIs404() {
        given().contentType("application/x-www-form-urlencoded").formParam("batch", "default")
                .post("/compare").then().statusCode(200)
                .body(containsString("data-field=\"models\""), not(containsString("Exception")));
        given().contentType("application/x-www-form-urlencoded").formParam("models", MODELS.get(0))
                .formParam("batch", "given").formParam("prompts", "  \n ").post("/compare").then().statusCode(200)
                .body(containsString("data-field=\"prompts\""));
        given().contentType("application/x-www-form-urlencoded").formParam("models", MODELS.get(0))
                .formParam("batch", "given").formParam("prompts", "t1").formParam("topK", "lots")
                .header("HX-Request", "true").post("/compare").then().statusCode(200)
                .body(containsString("data-field=\"topK\""), not(containsString("<html")));
        given().get("/compare/999999999").then().statusCode(404).body(containsString("id=\"not-found\""));
        given().get("/compare/abc").then().statusCode(404);
    }
}
