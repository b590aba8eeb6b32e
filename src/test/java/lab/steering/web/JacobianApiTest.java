package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.hamcrest.Matchers.anyOf;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.everyItem;
import static org.hamcrest.Matchers.greaterThan;
import static org.hamcrest.Matchers.greaterThanOrEqualTo;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.notNullValue;
import static org.hamcrest.Matchers.nullValue;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import io.restassured.path.json.config.JsonPathConfig;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import lab.steering.jacobian.Spectrum;
import lab.steering.jacobian.Svd;
import lab.steering.model.SafetensorsReader;
import lab.steering.service.jobs.WorkLimiter;
import org.junit.jupiter.api.Test;

/**
 * POST /api/jacobian, /export and /jobs end to end on stories260K-text ("Once upon a time": 5 tokens, d = 64, L = 5).
 * Tolerances as in DetachedJacobianTest (float64 1e-12, float32 1e-5; the ordinary Jacobian misses by > 1e-2).
 * The test profile sets lab.jacobian.max-bytes=100M so that a 60-token float64 request is refused (413) while the
 * 5-token ones pass; the limiter keeps its defaults (1 running, 4 queued).
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class JacobianApiTest {

    static final String MODEL = SharedModels.STORIES_TEXT;
    static final String PROMPT = "Once upon a time";

    @Inject
    WorkLimiter limiter;

    static JsonPath doubles(Response r) {
        return r.jsonPath(JsonPathConfig.jsonPathConfig().numberReturnType(JsonPathConfig.NumberReturnType.DOUBLE));
    }

    @Test
    void shouldAnalyseInFloat64WithExactReconstructionAndDecodedSpectra() {
        SharedModels.require(MODEL);
        Response r = given().contentType(ContentType.JSON)
                .body(body("model", MODEL, "prompt", PROMPT, "dtype", "float64", "bothSigns", true, "layers",
                        List.of(2, 5)))
                .post("/api/jacobian");
        r.then().statusCode(200)
                .body("model", equalTo(MODEL))
                .body("dtype", equalTo("float64"))
                .body("method", equalTo("full"))
                .body("tokens.id", equalTo(List.of(1, 403, 407, 261, 378)))
                .body("prediction.model.id", equalTo(r.path("prediction.linear.id")))
                .body("prediction.model.text", notNullValue())
                .body("prediction.agree", equalTo(true))
                .body("perToken.size()", equalTo(5))
                .body("perToken.collect { it.singularValues.size() }", everyItem(equalTo(8)))
                .body("perToken[0].u.size()", equalTo(8))
                .body("perToken[0].u[0].tokens.size()", equalTo(8))
                .body("perToken[0].u[0].tokens[0].token", notNullValue())
                .body("perToken[0].u[0].negative.size()", equalTo(8))
                .body("perToken[4].v[0].tokens.size()", equalTo(8))
                .body("layers.layer", equalTo(List.of(2, 5)))
                .body("layers.mode", everyItem(equalTo("cumulative")))
                .body("layers.component", everyItem(equalTo("layer")))
                .body("layers.collect { it.logitLens.size() }", everyItem(equalTo(8)))
                .body("layers[1].logitLens[0].id", equalTo(r.path("prediction.model.id")))
                // the layer-by-token cells; layer 5 is the output, whose cells are the per-token spectra
                .body("layers.collect { it.cells.size() }", everyItem(equalTo(5)))
                .body("layers[0].cells.position", equalTo(List.of(0, 1, 2, 3, 4)))
                .body("layers[0].cells[0].top.token", notNullValue())
                .body("layers[0].cells[0].negative.token", notNullValue())
                .body("layers[1].cells[4].top.id", equalTo(r.path("perToken[4].u[0].tokens[0].id")))
                .body("timings.totalMs", greaterThan(0f));
        JsonPath j = doubles(r);
        double detached = j.getDouble("reconstruction.detachedRelError");
        double ordinary = j.getDouble("reconstruction.ordinaryRelError");
        System.out.printf("API float64: detached %.3e ordinary %.3e timings %s%n", detached, ordinary,
                j.getMap("timings"));
        assertTrue(detached <= 1e-12, "detached " + detached);
        assertTrue(ordinary > 1e-2, "ordinary " + ordinary);
        assertEquals(0.0, j.getDouble("reconstruction.constantNorm"));
        assertTrue(j.getDouble("stableRank.combined") >= 1);
        List<Double> perTokenRanks = j.getList("stableRank.perToken", Double.class);
        assertEquals(5, perTokenRanks.size());
        perTokenRanks.forEach(x -> assertTrue(x >= 1 - 1e-12, "stable rank " + x));
        for (int i = 0; i < 5; i++) {
            List<Double> s = j.getList("perToken[" + i + "].singularValues", Double.class);
            for (int k = 1; k < s.size(); k++) {
                assertTrue(s.get(k) <= s.get(k - 1), "descending " + s);
            }
            assertTrue(s.get(0) > 0);
        }
        for (int l = 0; l < 2; l++) {
            assertTrue(j.getDouble("layers[" + l + "].relError") <= 1e-12);
            assertTrue(j.getDouble("layers[" + l + "].stableRank") >= 1 - 1e-12);
        }
    }

    @Test
    void shouldAnalyseInFloat32AndSweepLayerwiseComponentsOnRequestedLayers() {
        SharedModels.require(MODEL);
        Response r = given().contentType(ContentType.JSON)
                .body(body("model", MODEL, "prompt", PROMPT, "topK", 3, "layers", List.of(3, 1, 3), "mode",
                        "layerwise", "component", "mlp"))
                .post("/api/jacobian");
        r.then().statusCode(200).body("dtype", equalTo("float32")).body("method", equalTo("full"))
                .body("perToken.collect { it.singularValues.size() }", everyItem(equalTo(3)))
                .body("perToken[0].u[0].negative", nullValue())
                .body("prediction.agree", equalTo(true))
                .body("stableRank.exact", equalTo(true))
                .body("layers.layer", equalTo(List.of(1, 3)))
                .body("layers.mode", everyItem(equalTo("layerwise")))
                .body("layers.component", everyItem(equalTo("mlp")))
                .body("layers.collect { it.singularValues.size() }", everyItem(equalTo(8)))
                .body("layers.relError", everyItem(not(greaterThan(1e-5f))));
        JsonPath j = doubles(r);
        double detached = j.getDouble("reconstruction.detachedRelError");
        System.out.printf("API float32: detached %.3e ordinary %.3e timings %s%n", detached,
                j.getDouble("reconstruction.ordinaryRelError"), j.getMap("timings"));
        assertTrue(detached <= 1e-5, "detached " + detached);
        assertTrue(j.getDouble("reconstruction.ordinaryRelError") > 1e-2);
    }

    /** The export holds the very J the analysis decomposed: its SVDs give the JSON's singular values. */
    @Test
    void shouldExportTheStackAsSafetensorsWithTheSameJacobian(@org.junit.jupiter.api.io.TempDir Path tmp)
            throws IOException {
        SharedModels.require(MODEL);
        Map<String, Object> req = body("model", MODEL, "prompt", PROMPT, "dtype", "float64", "layers", "none");
        Response file = given().contentType(ContentType.JSON).body(req).post("/api/jacobian/export");
        file.then().statusCode(200).contentType("application/octet-stream")
                .header("Content-Disposition", containsString("filename=\"jacobian-stories260K-text-5tok-output-float64"
                        + ".safetensors\""));
        Path folder = Files.createDirectories(tmp.resolve("f64"));
        Files.write(folder.resolve("model.safetensors"), file.asByteArray());
        JsonPath analysis = doubles(given().contentType(ContentType.JSON).body(req).post("/api/jacobian"));
        try (SafetensorsReader r = SafetensorsReader.open(folder)) {
            assertEquals(java.util.Set.of("jacobian", "embeddings", "output"), r.names(), "no constant: c = 0");
            assertArrayEquals(new long[] {5, 64, 64}, r.info("jacobian").shape());
            assertArrayEquals(new long[] {5, 64}, r.info("embeddings").shape());
            assertArrayEquals(new long[] {64}, r.info("output").shape());
            assertEquals("F64", r.info("jacobian").dtype());
            double[] jac = r.readDoubles("jacobian");
            double[] x = r.readDoubles("embeddings");
            double[] y = r.readDoubles("output");
            double[] recon = new double[64];
            for (int i = 0; i < 5; i++) {
                double[] ji = java.util.Arrays.copyOfRange(jac, i * 4096, (i + 1) * 4096);
                Spectrum s = Svd.top(ji, 64, 8);
                List<Double> json = analysis.getList("perToken[" + i + "].singularValues", Double.class);
                for (int k = 0; k < 8; k++) {
                    assertEquals(json.get(k), s.singularValues()[k], 1e-12 * json.get(0), "token " + i + " sigma " + k);
                }
                for (int a = 0; a < 64; a++) {
                    for (int b = 0; b < 64; b++) {
                        recon[a] += ji[a * 64 + b] * x[i * 64 + b];
                    }
                }
            }
            double err = 0;
            double norm = 0;
            for (int a = 0; a < 64; a++) {
                err += (recon[a] - y[a]) * (recon[a] - y[a]);
                norm += y[a] * y[a];
            }
            assertTrue(Math.sqrt(err / norm) <= 1e-12, "file's own reconstruction " + Math.sqrt(err / norm));
        }
        Map<String, String> meta = SafetensorsReader.metadata(folder.resolve("model.safetensors"));
        assertEquals("[1,403,407,261,378]", meta.get("token_ids"));
        assertEquals(MODEL, meta.get("model"));
        assertEquals(PROMPT, meta.get("prompt"));
        assertEquals("float64", meta.get("dtype"));
        assertTrue(meta.get("target").contains("\"layer\":5") && meta.get("target").contains("\"isModelOutput\":true"),
                meta.get("target"));

        Response f32 = given().contentType(ContentType.JSON)
                .body(body("model", MODEL, "prompt", PROMPT, "layers", List.of(2), "mode", "layerwise",
                        "component", "attn"))
                .post("/api/jacobian/export");
        f32.then().statusCode(200).header("Content-Disposition", containsString("-L2-layerwise-attn-float32"));
        Path folder32 = Files.createDirectories(tmp.resolve("f32"));
        Files.write(folder32.resolve("model.safetensors"), f32.asByteArray());
        try (SafetensorsReader r = SafetensorsReader.open(folder32)) {
            assertEquals("F32", r.info("jacobian").dtype());
            assertArrayEquals(new long[] {5, 64, 64}, r.info("jacobian").shape());
        }
        assertTrue(SafetensorsReader.metadata(folder32.resolve("model.safetensors")).get("target")
                .contains("\"mode\":\"layerwise\""));
    }

    @Test
    void shouldRejectBadFieldsNamingThem() {
        SharedModels.require(MODEL);
        record Case(String path, Map<String, Object> body, int status, String error) {
        }
        String longPrompt = "Once upon a time ".repeat(20); // ~ 80 tokens > lab.jacobian.max-tokens (64)
        List<Case> cases = new ArrayList<>(List.of(
                new Case("", body("model", "nope", "prompt", PROMPT), 404, "unknown_model"),
                new Case("", body("model", MODEL, "prompt", ""), 400, "invalid_prompt"),
                new Case("", body("model", MODEL), 400, "invalid_prompt"),
                new Case("", body("model", MODEL, "prompt", longPrompt, "method", "full"), 400, "invalid_prompt"),
                new Case("", body("model", MODEL, "prompt", "Lily ".repeat(600)), 400, "invalid_prompt"),
                new Case("/export", body("model", MODEL, "prompt", longPrompt), 400, "invalid_prompt"),
                new Case("/export", body("model", MODEL, "prompt", PROMPT, "method", "lanczos"), 400,
                        "invalid_method"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "topK", 0), 400, "invalid_topK"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "topK", 65), 400, "invalid_topK"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "topK", "many"), 400, "invalid_topK"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "layers", List.of(0)), 400, "invalid_layers"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "layers", List.of(1, 6)), 400, "invalid_layers"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "layers", List.of("two")), 400, "invalid_layers"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "layers", "some"), 400, "invalid_layers"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "layers", 3), 400, "invalid_layers"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "dtype", "float16"), 400, "invalid_dtype"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "method", "magic"), 400, "invalid_method"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "mode", "sideways"), 400, "invalid_mode"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "component", "head"), 400, "invalid_component"),
                new Case("", body("model", MODEL, "prompt", PROMPT, "bothSigns", "maybe"), 400, "invalid_bothSigns"),
                new Case("/export", body("model", MODEL, "prompt", PROMPT, "layers", List.of(1, 2)), 400,
                        "invalid_layers"),
                new Case("/export", body("model", MODEL, "prompt", ""), 400, "invalid_prompt"),
                new Case("/jobs", body("model", MODEL, "prompt", PROMPT, "dtype", "half"), 400, "invalid_dtype")));
        for (Case c : cases) {
            String field = c.error().startsWith("invalid_") ? c.error().substring("invalid_".length()) : "";
            given().contentType(ContentType.JSON).body(c.body()).post("/api/jacobian" + c.path()).then()
                    .statusCode(c.status())
                    .contentType(ContentType.JSON)
                    .body("error", equalTo(c.error()))
                    .body("message", startsWith(field.isEmpty() ? "model 'nope'" : field))
                    .body(not(containsString("at lab.steering")));
        }
        given().contentType(ContentType.JSON).post("/api/jacobian").then().statusCode(400)
                .body("error", equalTo("missing_body"));
        given().get("/api/jacobian/jobs/no-such-job").then().statusCode(404).body("error", equalTo("unknown_job"));
        given().delete("/api/jacobian/jobs/no-such-job").then().statusCode(404).body("error", equalTo("unknown_job"));
    }

    @Test
    void shouldRefuseARequestAboveTheMemoryLimitWithTheEstimate() {
        SharedModels.require(MODEL);
        String prompt = "Once upon a time there was a little girl named Lily who liked to play in the park with her"
                + " dog and her friends every day after school";
        Response r = given().contentType(ContentType.JSON)
                .body(body("model", MODEL, "prompt", prompt, "dtype", "float64", "method", "full"))
                .post("/api/jacobian");
        r.then().statusCode(413).body("error", equalTo("too_large")).body("method", equalTo("full"))
                .body("message", containsString("MB (limit 100 MB"))
                .body("limitMb", equalTo(100.0f))
                .body("estimateMb", greaterThan(100f))
                .body("estimateSeconds", greaterThanOrEqualTo(0f));
    }

    /** Same prompt as the 413 test: "auto" falls back to the matrix-free method (checked on a job kept queued). */
    @Test
    void shouldFallBackToTheLowRankMethodWhenTheFullStackIsTooLarge() throws Exception {
        SharedModels.require(MODEL);
        String prompt = "Once upon a time there was a little girl named Lily who liked to play in the park with her"
                + " dog and her friends every day after school";
        try (AutoCloseable hold = limiter.hold()) {
            String id = given().contentType(ContentType.JSON)
                    .body(body("model", MODEL, "prompt", prompt, "dtype", "float64")).post("/api/jacobian/jobs")
                    .then().statusCode(202).body("method", equalTo("lanczos"))
                    // the estimate before the job starts, and while it waits, the time left (the same)
                    .body("estimateSeconds", greaterThan(0f)).body("remainingSeconds", greaterThan(0f))
                    .extract().path("id");
            given().delete("/api/jacobian/jobs/" + id).then().statusCode(202);
        }
    }

    /**
     * Jobs wait in the database (lab.jobs.max-queued = lab.jacobian.max-queued = 4 beyond which 429), and the job
     * that runs holds the limiter's one running slot, so the synchronous endpoints queue behind it in the limiter
     * (4 places) and are refused beyond that.
     */
    @Test
    void shouldQueueJobsAnswer429WhenFullAndCancelRunningAndQueuedJobs() throws Exception {
        SharedModels.require(MODEL);
        Map<String, Object> req = body("model", MODEL, "prompt", PROMPT, "layers", "none");
        List<String> queued = new ArrayList<>();
        List<CompletableFuture<Integer>> waiting = new ArrayList<>();
        String running;
        try (AutoCloseable hold = limiter.hold()) {
            running = given().contentType(ContentType.JSON).body(req).post("/api/jacobian/jobs").then()
                    .statusCode(202).header("Location", containsString("/api/jacobian/jobs/"))
                    .body("status", anyOf(equalTo("queued"), equalTo("running"))).extract().path("id");
            awaitStatus(running, "running");
            for (int i = 0; i < 4; i++) { // lab.jobs.max-queued
                queued.add(given().contentType(ContentType.JSON).body(req).post("/api/jacobian/jobs").then()
                        .statusCode(202).body("status", equalTo("queued")).extract().path("id"));
            }
            given().contentType(ContentType.JSON).body(req).post("/api/jacobian/jobs").then().statusCode(429)
                    .header("Retry-After", notNullValue())
                    .body("error", equalTo("busy")).body("message", containsString("job queue is full"));
            for (int i = 0; i < 4; i++) { // lab.jacobian.max-queued: synchronous analyses wait in the limiter
                waiting.add(CompletableFuture.supplyAsync(() -> given().contentType(ContentType.JSON).body(req)
                        .post("/api/jacobian").then().extract().statusCode()));
            }
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (limiter.queued() < 4 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(4, limiter.queued());
            given().contentType(ContentType.JSON).body(req).post("/api/jacobian").then().statusCode(429)
                    .header("Retry-After", notNullValue())
                    .body("error", equalTo("busy")).body("retryAfterSeconds", greaterThanOrEqualTo(1));
            given().contentType(ContentType.JSON).body(req).post("/api/jacobian/export").then().statusCode(429)
                    .contentType(ContentType.JSON).body("error", equalTo("busy"));
            for (String id : queued) {
                given().delete("/api/jacobian/jobs/" + id).then().statusCode(202).body("status", equalTo("cancelled"));
            }
            given().delete("/api/jacobian/jobs/" + running).then().statusCode(202)
                    .body("status", equalTo("running")).body("cancelRequested", equalTo(true));
        }
        JsonPath cancelled = awaitStatus(running, "cancelled");
        assertFalse(cancelled.getString("stage").equals("done"));
        for (CompletableFuture<Integer> w : waiting) {
            assertEquals(200, w.get(60, TimeUnit.SECONDS));
        }
        // the queue is free again: a job runs to the end with its result
        String id = given().contentType(ContentType.JSON).body(req).post("/api/jacobian/jobs").then().statusCode(202)
                .extract().path("id");
        JsonPath done = awaitStatus(id, "done");
        assertEquals(1.0, done.getDouble("progress"));
        assertTrue(done.getDouble("estimateSeconds") > 0, "the estimate stays");
        assertTrue(done.get("remainingSeconds") == null, "nothing left once done");
        assertEquals(1, done.getInt("attempts"));
        assertTrue(done.getString("worker").length() > 0);
        assertTrue(done.getDouble("result.reconstruction.detachedRelError") <= 1e-5);
        assertEquals(5, done.getList("result.perToken").size());
        given().delete("/api/jacobian/jobs/" + id).then().statusCode(202).body("status", equalTo("done"));
    }

    static JsonPath awaitStatus(String id, String status) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        JsonPath last = null;
        while (System.nanoTime() < deadline) {
            last = doubles(given().get("/api/jacobian/jobs/" + id).then().statusCode(200).extract().response());
            if (status.equals(last.getString("status"))) {
                return last;
            }
            Thread.sleep(20);
        }
        throw new AssertionError("job " + id + " did not reach " + status + ": " + (last == null ? null : last.prettify()));
    }
}
