package lab.steering.web;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.notNullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.sql.DataSource;
import lab.steering.TestModels;
import lab.steering.service.jobs.WorkLimiter;
import org.junit.jupiter.api.Test;

/**
 * POST /api/compare and the stored comparisons against PostgreSQL, on the comparison models
 * ({@link TestModels#compareModels()}): one prompt answered at once, a batch as a job with progress, cancellation,
 * the default batch, and every refusal naming its field.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class CompareApiTest {

    static final List<String> MODELS = TestModels.compareModels();

    @Inject
    WorkLimiter limiter;
    @Inject
    DataSource db;

    static JsonPath post(Object body, int status) {
        return given().contentType(ContentType.JSON).body(body).post("/api/compare").then().statusCode(status)
                .extract().jsonPath();
    }

    static JsonPath waitFor(long id, String status, List<Double> progress) throws InterruptedException {
        long end = System.currentTimeMillis() + 180_000;
        while (true) {
            JsonPath j = given().get("/api/compare/" + id).then().statusCode(200).extract().jsonPath();
            if (progress != null) {
                progress.add(j.getDouble("progress"));
            }
            if (!List.of("queued", "running").contains(j.getString("status"))) {
                assertEquals(status, j.getString("status"), j.prettify());
                return j;
            }
            assertTrue(System.currentTimeMillis() < end, "comparison " + id + " did not finish: " + j.prettify());
            Thread.sleep(100);
        }
    }

    @Test
    void onePromptIsAnsweredAtOnceWithEveryModelSideBySideAndEqualsTheJacobianApi() {
        String prompt = "t1 t5 t9 t2 t7";
        JsonPath j = post(Map.of("models", MODELS, "prompt", prompt, "vectors", 2), 200);
        assertEquals("done", j.getString("status"));
        assertEquals(1, j.getInt("promptCount"));
        assertEquals(MODELS, j.getList("models.model.id"));
        assertEquals(MODELS, j.getList("prompts[0].results.model"));
        List<Double> ranks = new ArrayList<>();
        for (int m = 0; m < MODELS.size(); m++) {
            String e = "prompts[0].results[" + m + "].";
            // the second path: the plain analysis of the same prompt on the same model
            JsonPath a = given().contentType(ContentType.JSON).body(Map.of("model", MODELS.get(m), "prompt", prompt,
                    "layers", "none")).post("/api/jacobian").then().statusCode(200).extract().jsonPath();
            double combined = j.getDouble(e + "combined.stableRank");
            assertEquals(a.getDouble("stableRank.combined"), combined, 1e-9 * combined);
            List<Float> perToken = j.getList(e + "perTokenStableRank", Float.class);
            List<Float> want = a.getList("stableRank.perToken", Float.class);
            assertEquals(want.size(), perToken.size());
            for (int i = 0; i < want.size(); i++) {
                assertEquals(want.get(i), perToken.get(i), 1e-6 * want.get(i));
            }
            int last = want.size() - 1;
            assertEquals(a.getDouble("perToken[" + last + "].stableRank"), j.getDouble(e + "lastToken.stableRank"), 1e-9);
            assertEquals(a.getList("perToken[" + last + "].singularValues"), j.getList(e + "lastToken.singularValues"));
            assertEquals(a.getList("perToken[" + last + "].u[0].tokens.id"), j.getList(e + "lastToken.u[0].tokens.id"));
            assertEquals(2, j.getList(e + "lastToken.u").size(), "vectors = 2 decoded vectors kept");
            assertEquals(2, j.getList(e + "combined.u").size());
            // the concatenated matrix's top singular value is at least each block's
            assertTrue(j.getDouble(e + "combined.singularValues[0]") >= j.getDouble(e + "lastToken.singularValues[0]")
                    * (1 - 1e-6));
            assertTrue(combined >= 1 - 1e-9, "a stable rank is at least 1");
            assertTrue(j.getDouble(e + "detachedRelError") < 1e-4);
            ranks.add(combined);
            // one prompt: the summary is that prompt's value
            assertEquals(combined, j.getDouble("models[" + m + "].combinedStableRank.median"), 1e-12);
        }
        assertNotEquals(ranks.get(0), ranks.get(1), "different models, different stable ranks");
        // stored: the same content comes back by id
        long id = j.getLong("id");
        JsonPath stored = given().get("/api/compare/" + id).then().statusCode(200).extract().jsonPath();
        assertEquals(j.getList("prompts[0].results.combined.stableRank"),
                stored.getList("prompts[0].results.combined.stableRank"));
        assertEquals(j.getList("prompts[0].results.lastToken.u.tokens.token"),
                stored.getList("prompts[0].results.lastToken.u.tokens.token"));
    }

    @Test
    void aBatchRunsAsAJobWithProgressAndIsStoredInPostgres() throws Exception {
        List<String> prompts = List.of("t1 t2", "t3 t4 t5 t6", "t7", "t8 t9 t10");
        var r = given().contentType(ContentType.JSON).body(Map.of("models", MODELS, "prompts", prompts))
                .post("/api/compare").then().statusCode(202).header("Location", containsString("/api/compare/"))
                .body("id", notNullValue()).body("promptCount", equalTo(4)).body("batch", equalTo("given"))
                .extract().jsonPath();
        long id = r.getLong("id");
        List<Double> progress = new ArrayList<>();
        JsonPath j = waitFor(id, "done", progress);
        for (int i = 1; i < progress.size(); i++) {
            assertTrue(progress.get(i) >= progress.get(i - 1) - 1e-12, "progress never goes back: " + progress);
        }
        assertEquals(1.0, j.getDouble("progress"));
        assertEquals(prompts.size() * MODELS.size(), j.getInt("entries"));
        assertEquals(prompts, j.getList("prompts.prompt"));
        // the summary against an independent computation from the per-prompt entries (numpy-style quartiles);
        // RestAssured reads the JSON's doubles as floats, hence 1e-6 relative
        for (int m = 0; m < MODELS.size(); m++) {
            double[] v = new double[prompts.size()];
            for (int p = 0; p < prompts.size(); p++) {
                v[p] = j.getDouble("prompts[" + p + "].results[" + m + "].combined.stableRank");
            }
            Arrays.sort(v); // 4 values: q1 at 0.75 between v0 and v1, median halfway between v1 and v2
            String s = "models[" + m + "].combinedStableRank.";
            final double TOL = 1e-6 * Math.max(1, v[3]);
            assertEquals(4, j.getInt(s + "count"));
            assertEquals(v[0], j.getDouble(s + "min"), TOL);
            assertEquals(v[3], j.getDouble(s + "max"), TOL);
            assertEquals(v[0] + 0.75 * (v[1] - v[0]), j.getDouble(s + "q1"), TOL);
            assertEquals((v[1] + v[2]) / 2, j.getDouble(s + "median"), TOL);
            assertEquals(v[2] + 0.25 * (v[3] - v[2]), j.getDouble(s + "q3"), TOL);
            assertEquals(Arrays.stream(v).average().orElseThrow(), j.getDouble(s + "mean"), TOL);
        }
        // in PostgreSQL: one row per prompt and model, with the stable rank the API shows
        Map<String, Double> rows = new HashMap<>();
        try (Connection c = db.getConnection(); Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT prompt_index, model_id, combined_stable_rank FROM comparison_entry"
                     + " WHERE comparison_id = " + id)) {
            while (rs.next()) {
                rows.put(rs.getInt(1) + "/" + rs.getString(2), rs.getDouble(3));
            }
        }
        assertEquals(prompts.size() * MODELS.size(), rows.size());
        double shown = j.getDouble("prompts[2].results[1].combined.stableRank"); // RestAssured reads a float
        assertEquals(shown, rows.get("2/" + MODELS.get(1)), 1e-6 * shown);
        given().get("/api/compare").then().statusCode(200).body("id", org.hamcrest.Matchers.hasItem((int) id));
    }

    @Test
    void theDefaultBatchIsTheHundredPhrasesAndARunningComparisonCanBeCancelled() throws Exception {
        long id;
        try (AutoCloseable held = limiter.hold()) { // the job stops at its first progress point until released
            JsonPath r = post(Map.of("models", MODELS.subList(0, 1), "prompts", "default"), 202);
            assertEquals(100, r.getInt("promptCount"));
            assertEquals("default", r.getString("batch"));
            id = r.getLong("id");
            long end = System.currentTimeMillis() + 30_000;
            while (!given().get("/api/compare/" + id).jsonPath().getString("status").equals("running")) {
                assertTrue(System.currentTimeMillis() < end, "the job did not start");
                Thread.sleep(50);
            }
            given().delete("/api/compare/" + id).then().statusCode(202).body("id", equalTo((int) id));
        }
        JsonPath j = waitFor(id, "cancelled", null);
        assertTrue(j.getInt("entries") < 100, "stopped early");
        assertEquals(100, j.getList("prompts").size());
        assertEquals("I left my keys on the kitchen table", j.getString("prompts[0].prompt"));
    }

    @Test
    void everyBadFieldIsRefusedWithItsName() {
        String a = MODELS.get(0);
        Map<String, Object> ok = Map.of("models", MODELS, "prompt", "t1 t2");
        List<Object[]> cases = new ArrayList<>();
        cases.add(new Object[] {Map.of("prompt", "t1"), 400, "invalid_models", "models"});
        cases.add(new Object[] {Map.of("models", List.of(), "prompt", "t1"), 400, "invalid_models", "models"});
        cases.add(new Object[] {Map.of("models", List.of(a, a), "prompt", "t1"), 400, "invalid_models", "twice"});
        cases.add(new Object[] {Map.of("models", List.of(a, "b", "c", "d", "e", "f", "g", "h", "i"), "prompt", "t1"),
            400, "invalid_models", "at most 8"});
        cases.add(new Object[] {Map.of("models", List.of(a, "no-such-model"), "prompt", "t1"), 404, "unknown_model",
            "no-such-model"});
        cases.add(new Object[] {Map.of("models", "tiny", "prompt", "t1"), 400, "invalid_models", "models"});
        cases.add(new Object[] {Map.of("models", MODELS), 400, "invalid_prompt", "prompt"});
        cases.add(new Object[] {Map.of("models", MODELS, "prompt", ""), 400, "invalid_prompt", "prompt"});
        cases.add(new Object[] {Map.of("models", MODELS, "prompt", "t1", "prompts", List.of("t2")), 400,
            "invalid_prompts", "not both"});
        cases.add(new Object[] {Map.of("models", MODELS, "prompts", List.of()), 400, "invalid_prompts", "1 to 500"});
        cases.add(new Object[] {Map.of("models", MODELS, "prompts", List.of("t1", "")), 400, "invalid_prompts",
            "prompts[1]"});
        cases.add(new Object[] {Map.of("models", MODELS, "prompts", "everything"), 400, "invalid_prompts",
            "\"default\""});
        cases.add(new Object[] {Map.of("models", MODELS, "prompts", 42), 400, "invalid_prompts", "prompts"});
        cases.add(new Object[] {Map.of("models", MODELS, "prompts", List.of("t1", "t2 ".repeat(200))), 400,
            "invalid_prompts", "prompts[1] on model '" + a + "'"});
        cases.add(new Object[] {with(ok, "dtype", "float16"), 400, "invalid_dtype", "dtype"});
        cases.add(new Object[] {with(ok, "topK", 0), 400, "invalid_topK", "topK"});
        cases.add(new Object[] {with(ok, "topK", 40), 400, "invalid_topK", "topK"}); // above tiny-llama's d = 32
        cases.add(new Object[] {with(ok, "vectors", 9), 400, "invalid_vectors", "vectors"});
        cases.add(new Object[] {with(ok, "vectors", "many"), 400, "invalid_vectors", "vectors"});
        for (Object[] c : cases) {
            given().contentType(ContentType.JSON).body(c[0]).post("/api/compare").then()
                    .statusCode((int) c[1]).contentType(ContentType.JSON)
                    .body("error", equalTo(c[2])).body("message", containsString((String) c[3]));
        }
        given().contentType(ContentType.JSON).post("/api/compare").then().statusCode(400)
                .body("error", equalTo("missing_body"));
        given().get("/api/compare/999999999").then().statusCode(404).body("error", equalTo("unknown_comparison"));
        given().delete("/api/compare/999999999").then().statusCode(404).body("error", equalTo("unknown_comparison"));
        given().get("/api/compare/abc").then().statusCode(400).body("error", equalTo("invalid_id"));
        given().get("/api/compare?limit=0").then().statusCode(400).body("error", equalTo("invalid_limit"));
    }

    static Map<String, Object> with(Map<String, Object> base, String key, Object value) {
        Map<String, Object> m = new HashMap<>(base);
        m.put(key, value);
        return m;
    }
}
