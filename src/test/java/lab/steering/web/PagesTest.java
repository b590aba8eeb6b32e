package lab.steering.web;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.not;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import org.junit.jupiter.api.Test;

/** The HTML pages: each answers 200 with its key elements, escapes user text and shows field errors inline. */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class PagesTest {

    static final String MODEL = SharedModels.STORIES_TEXT;
    static final String SCRIPT = "<script>alert(1)</script>";

    static long steerRun(String prompt) {
        return given().contentType(ContentType.JSON)
                .body(Map.of("model", MODEL, "vector", Map.of("conceptPrompt", "dog"), "prompt", prompt,
                        "strength", 4.0, "maxNewTokens", 6))
                .post("/api/steer").then().statusCode(200).extract().jsonPath().getLong("runId");
    }

    @Test
    void layoutLinksEveryPage() {
        given().get("/").then().statusCode(200)
                .body(containsString("href=\"/analyze\""), containsString("href=\"/operators\""),
                        containsString("href=\"/steer\""), containsString("href=\"/sweep\""),
                        containsString("href=\"/runs\""), containsString("href=\"/models\""));
    }

    @Test
    void modelsPageListsLoadedModelsWithShapes() {
        given().get("/models").then().statusCode(200)
                .body(containsString("id=\"models\""), containsString("class=\"page-models\""), containsString("data-model=\"" + MODEL + "\""),
                        containsString("Folders that failed to load"), containsString("<td>CPU</td>"),
                        not(containsString("cpu()")));
        // one error, once (the library shows it; the page had it twice)
        String missing = given().get("/operators/999999999").then().statusCode(404).extract().asString();
        org.junit.jupiter.api.Assertions.assertEquals(1, missing.split("does not exist", -1).length - 1, missing);
    }

    @Test
    void runsPageListsOpensAndComparesRunsWithPromptEscaped() {
        long a = steerRun("Once upon a time " + SCRIPT);
        long b = steerRun("The cat sat");
        given().get("/runs").then().statusCode(200)
                .body(containsString("href=\"/runs/" + a + "\""), containsString("&lt;script&gt;"),
                        not(containsString(SCRIPT)));
        given().get("/runs/" + a).then().statusCode(200)
                .body(containsString("id=\"normal\""), containsString("id=\"steered\""),
                        containsString("id=\"diagnostics\""), containsString("&lt;script&gt;"),
                        not(containsString(SCRIPT)));
        given().get("/runs/compare?a=" + a + "&b=" + b).then().statusCode(200)
                .body(containsString("id=\"run-a\""), containsString("id=\"run-b\""));
        // a bad request about runs says so above the list, which still lists them
        given().get("/runs/compare?a=" + a).then().statusCode(400)
                .body(containsString("pick two runs"), containsString("href=\"/runs/" + a + "\""),
                        not(containsString("No runs yet")));
    }

    static String analyzeUntilDone(String prompt) throws InterruptedException {
        String panel = given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("prompt", prompt).formParam("topK", "4")
                .formParam("layers", "auto").formParam("bothSigns", "on")
                .post("/analyze").then().statusCode(202)
                .body(containsString("id=\"panel\""), containsString("hx-trigger=\"every 500ms\""))
                .extract().asString();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("hx-get=\"/analyze/jobs/([^\"]+)\"").matcher(panel);
        org.junit.jupiter.api.Assertions.assertTrue(m.find(), panel);
        String id = m.group(1);
        for (int i = 0; i < 600; i++) {
            String html = given().get("/analyze/jobs/" + id).then().statusCode(200).extract().asString();
            if (!html.contains("every 500ms")) {
                return html;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("analysis did not finish");
    }

    @Test
    void analyzePageRunsAJobAndShowsSpectraDecodedTokensAndLayerSweep() throws Exception {
        given().get("/analyze").then().statusCode(200).body(containsString("id=\"analyze\""));
        String html = analyzeUntilDone("Once upon a time " + SCRIPT);
        org.hamcrest.MatcherAssert.assertThat(html, org.hamcrest.Matchers.allOf(containsString("class=\"done\""),
                containsString("id=\"reconstruction\""),
                containsString("id=\"reconstruction-scatter\""), containsString("data-name=\"ordinary\""), containsString("id=\"spectra\""),
                containsString("class=\"point\""), containsString("id=\"stable-ranks\""),
                containsString("class=\"grid decoded\""), containsString("id=\"layer-sweep\""),
                containsString("id=\"layer-grid\""), containsString("class=\"lt\" style=\"background-color: hsl("),
                containsString("id=\"export\""), containsString("&lt;script&gt;"), not(containsString(SCRIPT))));
    }

    @Test
    void analyzeShowsABadFieldNextToIt() {
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("prompt", "Hello").formParam("topK", "999")
                .post("/analyze").then().statusCode(200)
                .body(containsString("data-field=\"topK\""), not(containsString("every 500ms")));
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("prompt", "")
                .post("/analyze").then().statusCode(200).body(containsString("data-field=\"prompt\""));
    }

    @Test
    void analyzeExportDownloadsTheJacobianFile() {
        given().contentType(ContentType.URLENC).formParam("model", MODEL).formParam("prompt", "Once upon")
                .post("/analyze/export").then().statusCode(200)
                .header("Content-Disposition", containsString(".safetensors"));
    }

    @Test
    void steerPageShowsBothContinuationsAndStoresARun() {
        given().get("/steer").then().statusCode(200).body(containsString("id=\"steer\""));
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("source", "vector").formParam("conceptPrompt", "dog")
                .formParam("prompt", "Once upon a time " + SCRIPT).formParam("strength", "6")
                .formParam("maxNewTokens", "8")
                .post("/steer").then().statusCode(200)
                .body(containsString("id=\"normal\""), containsString("id=\"steered\""),
                        containsString("class=\"run-link\""), containsString("id=\"diagnostics\""),
                        containsString("&lt;script&gt;"), not(containsString(SCRIPT)),
                        not(containsString("<html")));
    }

    /** An operator of another model is refused before a stream starts: above the form, as without streaming. */
    @Test
    void aStreamedSteerWithAnOperatorOfAnotherModelIsRefusedAboveTheForm() {
        org.junit.jupiter.api.Assumptions.assumeTrue(given().get("/api/models").jsonPath().getList("id")
                .contains("steering-lab-base"), "the default model is not loaded");
        long op = given().contentType(ContentType.JSON).body(Map.of("name", "other-model", "model", MODEL,
                "conceptPrompt", "The dog")).post("/api/operators").then().statusCode(201).extract().jsonPath()
                .getLong("id");
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", "steering-lab-base").formParam("source", "operator")
                .formParam("operatorId", Long.toString(op)).formParam("prompt", "Once upon a time")
                .formParam("maxNewTokens", "3").formParam("stream", "on")
                .post("/steer").then().statusCode(200).header("HX-Push-Url", org.hamcrest.Matchers.nullValue())
                .body(containsString("id=\"form-error\""), containsString("fingerprint"),
                        not(containsString("sse-connect")));
    }

    @Test
    void steerStreamsTokensAsServerSentEventsThenTheComparison() {
        String panel = given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("source", "vector").formParam("conceptPrompt", "dog")
                .formParam("prompt", "Once upon a time " + SCRIPT).formParam("strength", "6")
                .formParam("maxNewTokens", "5").formParam("stream", "on")
                .post("/steer").then().statusCode(200)
                .body(containsString("sse-connect=\"/steer/stream/"), not(containsString(SCRIPT)))
                .extract().asString();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("sse-connect=\"(/steer/stream/[^\"]+)\"")
                .matcher(panel);
        org.junit.jupiter.api.Assertions.assertTrue(m.find(), panel);
        String events = given().accept("text/event-stream").get(m.group(1)).then().statusCode(200).extract().asString();
        org.hamcrest.MatcherAssert.assertThat(events, org.hamcrest.Matchers.allOf(
                containsString("event:normal"), containsString("event:steered"), containsString("event:done"),
                containsString("<span class=\"tok diverged\" data-i=\"0\" title=\"#0 added |Δh|="), containsString("id=\"steered\""), containsString("run-link"),
                containsString("&lt;script&gt;"), not(containsString(SCRIPT))));
        // both sides grow together: normal token k, then steered token k, and so on while both run
        java.util.List<String> names = new java.util.ArrayList<>();
        java.util.regex.Matcher e = java.util.regex.Pattern.compile("(?m)^event: ?(\\w+)").matcher(events);
        while (e.find()) {
            names.add(e.group(1));
        }
        org.junit.jupiter.api.Assertions.assertEquals("done", names.get(names.size() - 1), names.toString());
        long normal = names.stream().filter("normal"::equals).count();
        long steered = names.stream().filter("steered"::equals).count();
        org.junit.jupiter.api.Assertions.assertTrue(normal >= 2 && steered >= 2, names.toString());
        for (int k = 0; k < Math.min(normal, steered); k++) {
            org.junit.jupiter.api.Assertions.assertEquals(java.util.List.of("normal", "steered"),
                    names.subList(2 * k, 2 * k + 2), "interleaved: " + names);
        }
        // a stream is shown once
        given().accept("text/event-stream").get(m.group(1)).then().statusCode(200)
                .body(containsString("stream-error"));
        // a layer out of range is refused before any stream starts, next to its field
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("source", "vector").formParam("conceptPrompt", "dog")
                .formParam("prompt", "Hi").formParam("strength", "2").formParam("layer", "99")
                .formParam("stream", "on")
                .post("/steer").then().statusCode(200)
                .body(containsString("data-field=\"layer\""), not(containsString("sse-connect")));
    }

    /** A submitted form pushes its address; opening that address gives the same form back (user text escaped). */
    @Test
    void steerAndAnalyzeFormsHaveBookmarkableAddresses() throws Exception {
        String pushed = given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("source", "vector").formParam("conceptPrompt", "dog & cat")
                .formParam("prompt", "Once upon " + SCRIPT).formParam("strength", "3").formParam("layer", "2")
                .formParam("maxNewTokens", "3").formParam("stream", "on")
                .post("/steer").then().statusCode(200).extract().header("HX-Push-Url");
        org.junit.jupiter.api.Assertions.assertTrue(pushed.startsWith("/steer?model=" + MODEL + "&source=vector"),
                pushed);
        given().urlEncodingEnabled(false).get(pushed).then().statusCode(200).body(
                containsString("value=\"dog &amp; cat\""), containsString("Once upon &lt;script&gt;"),
                containsString("name=\"strength\" value=\"3\""), containsString("name=\"layer\" value=\"2\""),
                containsString("value=\"vector\" style=\"width:auto\" checked"), not(containsString(SCRIPT)));
        // sweep: the same (no operator needed to open the form)
        given().urlEncodingEnabled(false).get("/sweep?prompt=Once+%3Cscript%3E&strengths=0%2C+3&layers=2&maxNewTokens=4")
                .then().statusCode(200).body(containsString("Once &lt;script&gt;"),
                        containsString("value=\"0, 3\""), containsString("name=\"layers\" value=\"2\""),
                        not(containsString(SCRIPT)));
        // analyze: the job's address carries the form; with the job gone the form still comes back
        String panel = given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("prompt", "Once " + SCRIPT).formParam("topK", "3")
                .formParam("layers", "none").post("/analyze").then().statusCode(202).extract().asString();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("hx-get=\"/analyze/jobs/([^\"]+)\"").matcher(panel);
        org.junit.jupiter.api.Assertions.assertTrue(m.find(), panel);
        String gone = "/analyze?job=no-such-job&model=" + MODEL + "&prompt=Once+%3Cscript%3E&topK=3&layers=none";
        given().urlEncodingEnabled(false).get(gone).then().statusCode(200).body(containsString("does not exist"),
                containsString("analyze again"), containsString(">Once &lt;script&gt;</textarea>"),
                containsString("name=\"topK\" value=\"3\""), containsString("name=\"layers\" value=\"none\""));
    }

    @Test
    void steerShowsBadFieldsNextToThem() {
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("source", "vector").formParam("conceptPrompt", "dog")
                .formParam("prompt", "Hello").formParam("strength", "lots")
                .post("/steer").then().statusCode(200).body(containsString("data-field=\"strength\""));
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("source", "operator")
                .formParam("prompt", "Hello").formParam("strength", "2")
                .post("/steer").then().statusCode(200).body(containsString("data-field=\"operatorId\""));
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("model", MODEL).formParam("source", "vector").formParam("conceptPrompt", "")
                .formParam("prompt", "Hello").formParam("strength", "2")
                .post("/steer").then().statusCode(200).body(containsString("data-field=\"conceptPrompt\""));
    }

    @Test
    void operatorsPageBuildsListsFiltersEditsAndDeletes() {
        given().get("/operators").then().statusCode(200)
                .body(containsString("id=\"build\""), containsString("(default 2L/3)"), containsString("id=\"import\""),
                        containsString("id=\"concept-hint\""));
        String form = given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("name", "pages " + SCRIPT).formParam("model", MODEL).formParam("conceptPrompt", "The dog barked")
                .formParam("form", "lowrank").formParam("rank", "4").formParam("tags", "ui, test")
                .post("/operators").then().statusCode(200)
                .body(containsString("hx-get=\"/operators/builds/"), containsString("&lt;script&gt;"),
                        not(containsString(SCRIPT)))
                .extract().asString();
        java.util.regex.Matcher job = java.util.regex.Pattern.compile("hx-get=\"(/operators/builds/[^\"]+)\"")
                .matcher(form);
        org.junit.jupiter.api.Assertions.assertTrue(job.find(), form);
        String built = null;
        for (int i = 0; i < 600 && built == null; i++) {
            io.restassured.response.Response r = given().header("HX-Request", "true").get(job.group(1));
            if (!r.asString().contains("every 500ms")) {
                org.junit.jupiter.api.Assertions.assertEquals("operators-changed", r.header("HX-Trigger"));
                built = r.asString();
            } else {
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            }
        }
        org.hamcrest.MatcherAssert.assertThat(built, org.hamcrest.Matchers.allOf(containsString("id=\"created\""),
                containsString("&lt;script&gt;"), not(containsString(SCRIPT))));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("href=\"/operators/(\\d+)\"").matcher(built);
        org.junit.jupiter.api.Assertions.assertTrue(m.find(), built);
        long id = Long.parseLong(m.group(1));
        given().header("HX-Request", "true").get("/operators?q=pages&model=" + MODEL).then().statusCode(200)
                .body(containsString("data-operator=\"" + id + "\""), not(containsString("<html")));
        given().header("HX-Request", "true").get("/operators?q=nothing-matches-this").then().statusCode(200)
                .body(containsString("id=\"no-operators\""));
        given().get("/operators/" + id).then().statusCode(200)
                .body(containsString("id=\"edit\""), containsString("hx-confirm="), containsString("ui, test"));
        given().contentType(ContentType.URLENC).formParam("name", "renamed").formParam("description", "d")
                .formParam("tags", "a, b").post("/operators/" + id).then().statusCode(200)
                .body(containsString("renamed"), containsString("Saved."));
        given().contentType(ContentType.URLENC).formParam("name", "").formParam("description", "d")
                .formParam("tags", "a").post("/operators/" + id).then().statusCode(200)
                .body(containsString("data-field=\"name\""));
        given().header("HX-Request", "true").post("/operators/" + id + "/delete").then().statusCode(200)
                .header("HX-Redirect", "/operators");
        given().get("/operators/" + id).then().statusCode(404);
    }

    @Test
    void operatorBuildShowsBadFieldsNextToThem() {
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("name", "x").formParam("model", MODEL).formParam("conceptPrompt", "")
                .post("/operators").then().statusCode(200).body(containsString("data-field=\"conceptPrompt\""));
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("name", "x").formParam("model", MODEL).formParam("conceptPrompt", "dog")
                .formParam("layer", "99")
                .post("/operators").then().statusCode(200).body(containsString("data-field=\"layer\""));
    }

    @Test
    void operatorImportRejectsAnEmptyFileInline() {
        given().multiPart("file", "bad.safetensors", new byte[]{1, 2, 3}).multiPart("name", "bad")
                .post("/operators/import").then().statusCode(400).body(containsString("class=\"error"));
    }

    @Test
    void sweepPageShowsTheGridAndSuggestsACell() {
        long id = given().contentType(ContentType.JSON)
                .body(Map.of("name", "sweep-ui", "model", MODEL, "conceptPrompt", "The dog barked", "form", "lowrank",
                        "rank", 4))
                .post("/api/operators").then().statusCode(201).extract().jsonPath().getLong("id");
        given().get("/sweep?operator=" + id).then().statusCode(200).body(containsString("id=\"sweep\""));
        given().get("/operators/" + id).then().statusCode(200).body(containsString("href=\"/sweep?operator=" + id + "\""));
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("operatorId", Long.toString(id)).formParam("prompt", "Once upon a time " + SCRIPT)
                .formParam("strengths", "0, 4").formParam("layers", "2, 3").formParam("maxNewTokens", "4")
                .post("/sweep").then().statusCode(200)
                .body(containsString("id=\"sweep-grid\""), containsString("id=\"best\""),
                        containsString("data-layer=\"3\""), containsString("data-strength=\"4.0\""),
                        not(containsString(SCRIPT)));
        given().header("HX-Request", "true").contentType(ContentType.URLENC)
                .formParam("operatorId", Long.toString(id)).formParam("prompt", "Hi").formParam("strengths", "a")
                .post("/sweep").then().statusCode(200).body(containsString("data-field=\"strengths\""));
    }

    @Test
    void unknownRunIs404WithMessage() {
        given().get("/runs/999999999").then().statusCode(404).body(containsString("does not exist"));
    }
}
