package lab.steering.web;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import lab.steering.service.jobs.WorkLimiter;
import lab.steering.steer.EvalSuite;
import org.junit.jupiter.api.Test;

/**
 * POST /api/evaluations and the stored evaluations against PostgreSQL, on stories260K-text (the test app's default
 * model; skipped when absent): a small run as a job to its per-method table, the same run again giving the same
 * numbers, the CSV and JSON exports, suites imported and exported, cancellation, and every refusal naming its field.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class EvaluationApiTest {

    @Inject
    WorkLimiter limiter;

    static Map<String, Object> small() {
        Map<String, Object> m = new HashMap<>();
        m.put("concepts", 2);
        m.put("prompts", 3);
        m.put("strengths", List.of(1.0, 3.0));
        m.put("maxNewTokens", 6);
        m.put("seed", 3);
        m.put("resamples", 200);
        return m;
    }

    static JsonPath post(Object body, int status) {
        return given().contentType(ContentType.JSON).body(body).post("/api/evaluations").then().statusCode(status)
                .extract().jsonPath();
    }

    static JsonPath waitFor(long id, String status) throws InterruptedException {
        long end = System.currentTimeMillis() + 300_000;
        while (true) {
            JsonPath j = given().get("/api/evaluations/" + id).then().statusCode(200).extract().jsonPath();
            if (!List.of("queued", "running").contains(j.getString("status"))) {
                assertEquals(status, j.getString("status"), j.getString("error"));
                return j;
            }
            assertTrue(System.currentTimeMillis() < end, "evaluation " + id + " did not finish");
            Thread.sleep(200);
        }
    }

    @Test
    void aSmallRunGivesEachMethodsChosenSettingScoresAndOutputsAndReproduces() throws Exception {
        SharedModels.require(SharedModels.STORIES_TEXT);
        JsonPath started = post(small(), 202);
        long id = started.getLong("id");
        assertEquals(2, started.getInt("concepts"));
        assertEquals(3, started.getInt("prompts"));
        JsonPath j = waitFor(id, "done");
        assertEquals(1.0, j.getDouble("progress"), 1e-9);
        assertEquals("stories260K-text", j.getString("model"));
        assertEquals("everyday", j.getString("suite"));
        assertEquals(List.of("none", "prompting", "actadd", "operator", "operator-lowrank"),
                j.getList("methods.method"));
        assertEquals(1, j.getList("selectPrompts").size(), "round(0.3 * 3) prompts choose");
        for (int m = 0; m < 5; m++) {
            String method = j.getString("methods[" + m + "].method");
            Map<String, Object> agg = j.getMap("methods[" + m + "].scores.aggregate");
            double mean = ((Number) agg.get("mean")).doubleValue();
            assertTrue(((Number) agg.get("low")).doubleValue() <= mean + 1e-9
                    && mean <= ((Number) agg.get("high")).doubleValue() + 1e-9, method + " " + agg);
            assertEquals(2 * 2, j.getInt("methods[" + m + "].outputs"), method + ": 2 concepts x 2 report prompts");
            if (m >= 2) {
                assertTrue(List.of(1.0f, 3.0f).contains(j.getFloat("methods[" + m + "].strength")), method);
                // 2 strengths on the selection prompt, the chosen one on the 2 report prompts, per concept
                assertEquals(2 * (2 + 2), j.getList("methods[" + m + "].rows").size(), method);
            } else {
                assertNull(j.get("methods[" + m + "].strength"));
            }
        }
        assertEquals("report", j.getString("methods[0].rows[-1].split"));
        assertEquals(2 + 3 * 2, j.getList("grid").size(), "none, prompting, 3 methods x 2 strengths");

        // the same request again: the same numbers and texts
        JsonPath again = waitFor(post(small(), 202).getLong("id"), "done");
        assertEquals(j.getList("methods"), again.getList("methods"));
        assertEquals(j.getList("grid"), again.getList("grid"));

        String csv = given().get("/api/evaluations/" + id + "/export?format=csv").then().statusCode(200)
                .header("Content-Disposition", containsString("evaluation-" + id + ".csv")).extract().asString();
        String[] lines = csv.split("\r\n");
        assertTrue(lines[0].startsWith("evaluation,model,method,split,chosen,strength,layer,concept"), lines[0]);
        int rows = 0;
        for (int m = 0; m < 5; m++) {
            rows += j.getList("methods[" + m + "].rows").size();
        }
        assertEquals(rows + 1, lines.length, "a header and one line per output (texts here have no line breaks)");
        given().get("/api/evaluations/" + id + "/export?format=json").then().statusCode(200)
                .body("id", equalTo((int) id)).body("methods.size()", equalTo(5));
        given().get("/api/evaluations/" + id + "/export?format=xml").then().statusCode(400)
                .body("error", equalTo("invalid_format"));
        given().get("/api/evaluations").then().statusCode(200).body("id", org.hamcrest.Matchers.hasItem((int) id));
    }

    @Test
    void suitesAreImportedExportedAndRunByIdAndBadOnesNameTheField() throws Exception {
        Map<String, Object> suite = Map.of("name", "pets", "concepts", List.of(
                Map.of("name", "dog", "conceptPrompt", "The dog barked.", "words", List.of("dog", "bark"))),
                "prompts", List.of("Once upon a time", "The girl went"));
        long sid = given().contentType(ContentType.JSON).body(suite).post("/api/suites").then().statusCode(201)
                .body("concepts", equalTo(1)).body("prompts", equalTo(2)).extract().jsonPath().getLong("id");
        JsonPath exported = given().get("/api/suites/" + sid).then().statusCode(200)
                .header("Content-Disposition", containsString("suite-" + sid + ".json")).extract().jsonPath();
        assertEquals("pets", exported.getString("name"));
        assertEquals(List.of("dog", "bark"), exported.getList("concepts[0].words"));
        // re-importing the export gives the same suite
        long again = given().contentType(ContentType.JSON).body(exported.prettify()).post("/api/suites").then()
                .statusCode(201).extract().jsonPath().getLong("id");
        assertEquals(exported.prettify(), given().get("/api/suites/" + again).jsonPath().prettify());
        given().get("/api/suites").then().statusCode(200).body("id", org.hamcrest.Matchers.hasItem((int) sid));
        given().get("/api/suites/default").then().statusCode(200).body("name", equalTo("everyday"))
                .body("concepts.size()", equalTo(EvalSuite.defaultSuite().concepts().size()));
        given().get("/api/suites/999999").then().statusCode(404).body("error", equalTo("unknown_suite"));

        given().contentType(ContentType.JSON).body(Map.of("name", "x", "concepts", List.of(Map.of("name", "a",
                        "conceptPrompt", "A.", "words", List.of("ice cream"))), "prompts", List.of("a", "b")))
                .post("/api/suites").then().statusCode(400).body("error", equalTo("invalid_concepts"))
                .body("field", equalTo("concepts[0].words[0]")).body("message", containsString("ice cream"));

        if (SharedModels.present(SharedModels.STORIES_TEXT)) {
            Map<String, Object> byId = new HashMap<>(small());
            byId.put("suiteId", sid);
            byId.put("methods", List.of("none", "operator"));
            byId.put("strengths", List.of(1.0));
            JsonPath j = waitFor(post(byId, 202).getLong("id"), "done");
            assertEquals("pets", j.getString("suite"));
            assertEquals((int) sid, j.getInt("suiteId"));
            assertEquals(List.of("none", "operator"), j.getList("methods.method"));
        }
    }

    @Test
    void aRunningEvaluationCanBeCancelled() throws Exception {
        SharedModels.require(SharedModels.STORIES_TEXT);
        long id;
        try (AutoCloseable held = limiter.hold()) { // the job waits for a running slot until released
            id = post(Map.of("concepts", 3, "maxNewTokens", 8), 202).getLong("id");
            given().delete("/api/evaluations/" + id).then().statusCode(202).body("id", equalTo((int) id));
        }
        JsonPath j = waitFor(id, "cancelled");
        assertNull(j.get("methods"));
        given().get("/api/evaluations/" + id + "/export?format=csv").then().statusCode(409)
                .body("error", equalTo("not_done"));
    }

    @Test
    void everyBadFieldIsRefusedWithItsName() {
        List<Object[]> cases = new ArrayList<>();
        cases.add(new Object[] {Map.of("methods", List.of("steer-harder")), 400, "invalid_methods", "steer-harder"});
        cases.add(new Object[] {Map.of("methods", List.of()), 400, "invalid_methods", "at least one"});
        cases.add(new Object[] {Map.of("strengths", List.of()), 400, "invalid_strengths", "1 to 8"});
        cases.add(new Object[] {Map.of("strengths", List.of(1, 1)), 400, "invalid_strengths", "twice"});
        cases.add(new Object[] {Map.of("strengths", List.of(1000)), 400, "invalid_strengths", "-100 and 100"});
        cases.add(new Object[] {Map.of("layers", List.of(99)), 400, "invalid_layers", "99"});
        cases.add(new Object[] {Map.of("maxNewTokens", 0), 400, "invalid_maxNewTokens", "between 1"});
        cases.add(new Object[] {Map.of("temperature", -1), 400, "invalid_temperature", "between 0"});
        cases.add(new Object[] {Map.of("selectFraction", 1), 400, "invalid_selectFraction", "0.95"});
        cases.add(new Object[] {Map.of("rank", 0), 400, "invalid_rank", "rank"});
        cases.add(new Object[] {Map.of("resamples", 5), 400, "invalid_resamples", "100"});
        cases.add(new Object[] {Map.of("prompts", 1), 400, "invalid_prompts", "at least 2"});
        cases.add(new Object[] {Map.of("concepts", 0), 400, "invalid_concepts", "at least 1"});
        cases.add(new Object[] {Map.of("suiteId", 999999), 400, "invalid_suiteId", "999999"});
        cases.add(new Object[] {Map.of("suiteId", 1, "suite", Map.of("name", "x")), 400, "invalid_suite", "not both"});
        cases.add(new Object[] {Map.of("suite", "everyday"), 400, "invalid_suite", "suite object"});
        cases.add(new Object[] {Map.of("suite", Map.of("name", "x", "concepts", List.of(Map.of("name", "a",
                "conceptPrompt", "A.", "words", List.of("a"))), "prompts", List.of("only"))), 400, "invalid_suite",
            "suite.prompts"});
        cases.add(new Object[] {Map.of("model", "no-such-model"), 404, "unknown_model", "no-such-model"});
        cases.add(new Object[] {Map.of("strengths", List.of(1, 2, 3, 4, 5, 6, 7, 8), "layers", List.of(1, 2, 3, 4)),
            400, "invalid_strengths", "continuations"});
        for (Object[] c : cases) {
            given().contentType(ContentType.JSON).body(c[0]).post("/api/evaluations").then()
                    .statusCode((Integer) c[1]).body("error", equalTo(c[2])).body("message", containsString((String) c[3]));
        }
        given().get("/api/evaluations/abc").then().statusCode(400).body("error", equalTo("invalid_id"));
        given().get("/api/evaluations/999999").then().statusCode(404).body("error", equalTo("unknown_evaluation"));
    }
}
