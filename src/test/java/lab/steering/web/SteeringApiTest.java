package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.everyItem;
import static org.hamcrest.Matchers.greaterThan;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.lessThanOrEqualTo;
import static org.hamcrest.Matchers.matchesPattern;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.notNullValue;
import static org.hamcrest.Matchers.nullValue;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import jakarta.transaction.Transactional;
import java.time.OffsetDateTime;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import lab.steering.store.OperatorRecord;
import lab.steering.store.SteeringRun;
import org.junit.jupiter.api.Test;

/** The steering API end to end against PostgreSQL: operators, export/import, steer, sweep, runs, refusals. */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class SteeringApiTest {

    static final String MODEL = SharedModels.STORIES_TEXT;
    static final String CONCEPT = "The dog barked at the cat in the garden";

    @Inject
    TxHelper tx;

    static long build(Object... extra) {
        Map<String, Object> b = body("name", "dog", "model", MODEL, "conceptPrompt", CONCEPT);
        b.putAll(body(extra));
        return given().contentType(ContentType.JSON).body(b).post("/api/operators").then().statusCode(201)
                .extract().jsonPath().getLong("id");
    }

    static Response steer(Object... kv) {
        return given().contentType(ContentType.JSON).body(body(kv)).post("/api/steer");
    }

    @Test
    void shouldExposeModelFingerprints() {
        SharedModels.require(MODEL);
        Response r = given().get("/api/models").then().statusCode(200).extract().response();
        String text = r.path("find { it.id == 'stories260K-text' }.fingerprint");
        assertEquals(text, r.path("find { it.id == 'stories260K' }.fingerprint"), "same config and weights");
        assertNotEquals(text, r.path("find { it.id == '" + TestModels.VARIANT + "' }.fingerprint"));
        assertEquals(64, text.length());
    }

    @Test
    void shouldBuildFullAndLowRankOperatorsAndReportSizesAndFidelity() {
        SharedModels.require(MODEL);
        long full = build("tags", List.of("animals", "test"), "description", "a dog and a cat");
        given().get("/api/operators/" + full).then().statusCode(200)
                .body("form", equalTo("full")).body("layer", equalTo(3)).body("rank", nullValue())
                .body("conceptIds[0]", equalTo(1)).body("sizeBytes", greaterThan(18 * 64 * 64 * 4))
                .body("sha256", matchesPattern("[0-9a-f]{64}")).body("build.fullBytes", equalTo(18 * 64 * 64 * 4))
                .body("tags", equalTo(List.of("animals", "test")));
        given().contentType(ContentType.JSON).body(body("name", "dog lr", "model", MODEL, "conceptPrompt", CONCEPT,
                        "form", "lowrank", "layer", 2)).post("/api/operators").then().statusCode(201)
                .header("Location", containsString("/api/operators/"))
                .body("form", equalTo("lowrank")).body("layer", equalTo(2)).body("rank", greaterThan(0))
                .body("build.energy", equalTo(0.99f)).body("build.energyKept", greaterThan(0.989f))
                .body("build.lowRankBytes", greaterThan(0)).body("build.fidelity.meanCosine", greaterThan(0.98f))
                .body("build.fidelity.minRunningCosine", lessThanOrEqualTo(1.0001f));
        given().contentType(ContentType.JSON).body(body("name", "dog r4", "model", MODEL, "conceptPrompt", CONCEPT,
                        "form", "lowrank", "rank", 4)).post("/api/operators").then().statusCode(201)
                .body("rank", equalTo(4)).body("build.lowRankBytes", equalTo(18 * 4 * 129 * 4))
                .body("build.fidelity.meanCosine", lessThanOrEqualTo(1.0f));
    }

    @Test
    void shouldListSearchPatchAndDeleteOperators() {
        SharedModels.require(MODEL);
        long id = build("name", "zebra crossing", "tags", List.of("stripes"));
        given().get("/api/operators?model=" + MODEL + "&q=ZEBRA").then().statusCode(200)
                .body("id", hasItem((int) id)).body("name", everyItem(containsString("zebra")));
        given().get("/api/operators?q=stripes").then().body("id", hasItem((int) id));
        given().get("/api/operators?model=stories260K&q=zebra").then().body("id", not(hasItem((int) id)));
        given().contentType(ContentType.JSON).body(body("name", "zebra 2", "tags", List.of("a", "b")))
                .patch("/api/operators/" + id).then().statusCode(200)
                .body("name", equalTo("zebra 2")).body("tags", equalTo(List.of("a", "b")))
                .body("description", equalTo("")).body("layer", equalTo(3));
        given().contentType(ContentType.JSON).body(body("name", "")).patch("/api/operators/" + id).then()
                .statusCode(400).body("error", equalTo("invalid_name"));
        given().delete("/api/operators/" + id).then().statusCode(204);
        given().get("/api/operators/" + id).then().statusCode(404).body("error", equalTo("unknown_operator"));
        given().delete("/api/operators/" + id).then().statusCode(404);
        given().get("/api/operators/" + id + "/export").then().statusCode(404);
    }

    @Test
    void exportThenImportRoundTripsBitExactly() {
        SharedModels.require(MODEL);
        for (String form : new String[] {"full", "lowrank"}) {
            long id = build("form", form);
            Response ex = given().get("/api/operators/" + id + "/export").then().statusCode(200)
                    .contentType("application/octet-stream").extract().response();
            byte[] file = ex.asByteArray();
            String sha = given().get("/api/operators/" + id).then().extract().path("sha256");
            assertEquals(sha, ex.header("X-Content-SHA256"));
            Response imp = given().contentType("application/octet-stream").body(file)
                    .post("/api/operators/import?name=copy&tags=x,y&sha256=" + sha).then().statusCode(201)
                    .body("model", equalTo(MODEL)).body("sha256", equalTo(sha)).body("form", equalTo(form))
                    .body("name", equalTo("copy")).body("tags", equalTo(List.of("x", "y")))
                    .body("conceptPrompt", equalTo(CONCEPT)).body("build", nullValue())
                    .extract().response();
            long copy = imp.jsonPath().getLong("id");
            assertNotEquals(id, copy);
            assertArrayEquals(file, given().get("/api/operators/" + copy + "/export").asByteArray());
            // the imported copy steers exactly as the original
            Object a = steer("operatorId", id, "prompt", "Once upon a time", "strength", 1.5, "maxNewTokens", 12)
                    .then().statusCode(200).extract().path("steered.completion");
            Object b = steer("operatorId", copy, "prompt", "Once upon a time", "strength", 1.5, "maxNewTokens", 12)
                    .then().statusCode(200).extract().path("steered.completion");
            assertEquals(a, b);
        }
    }

    @Test
    void operatorsAreRefusedByAModelWithAnotherFingerprint() {
        SharedModels.require(MODEL);
        long id = build();
        byte[] file = given().get("/api/operators/" + id + "/export").asByteArray();
        String mine = given().get("/api/operators/" + id).then().extract().path("fingerprint");
        String theirs = given().get("/api/models").then().extract()
                .path("find { it.id == '" + TestModels.VARIANT + "' }.fingerprint");
        long before = tx.operators();
        given().contentType("application/octet-stream").body(file)
                .post("/api/operators/import?model=" + TestModels.VARIANT).then().statusCode(409)
                .body("error", equalTo("fingerprint_mismatch"))
                .body("message", containsString(mine)).body("message", containsString(theirs));
        assertEquals(before, tx.operators());
        steer("operatorId", id, "model", TestModels.VARIANT, "prompt", "Once upon a time", "strength", 1)
                .then().statusCode(409).body("error", equalTo("fingerprint_mismatch"))
                .body("message", containsString(mine)).body("message", containsString(theirs));
        // same fingerprint (same config and weights, another tokenizer): accepted
        given().contentType("application/octet-stream").body(file)
                .post("/api/operators/import?model=" + SharedModels.STORIES).then().statusCode(201)
                .body("model", equalTo(SharedModels.STORIES));
    }

    @Test
    void corruptOrTruncatedImportsAreRefusedAndWriteNothing() {
        SharedModels.require(MODEL);
        byte[] file = given().get("/api/operators/" + build() + "/export").asByteArray();
        long before = tx.operators();
        byte[] flipped = file.clone();
        flipped[flipped.length - 10] ^= 0x40;
        for (byte[] bad : List.of(Arrays.copyOf(file, file.length - 7), Arrays.copyOf(file, 100), flipped,
                "not a file".getBytes(), new byte[0])) {
            given().contentType("application/octet-stream").body(bad).post("/api/operators/import").then()
                    .statusCode(400).body("error", equalTo("invalid_file")).body("message", startsWith("file: "));
        }
        given().contentType("application/octet-stream").body(file).post("/api/operators/import?sha256=" + "0".repeat(64))
                .then().statusCode(400).body("error", equalTo("invalid_file"));
        assertEquals(before, tx.operators());
    }

    @Test
    void anOperatorRowCannotBeCommittedWithoutItsData() {
        long before = tx.operators();
        // Quarkus wraps the checked RollbackException of the failed commit; the database's refusal rides along as a
        // suppressed XAException whose cause is the deferred trigger's error (V2__operators.sql)
        io.quarkus.arc.ArcUndeclaredThrowableException e = assertThrows(
                io.quarkus.arc.ArcUndeclaredThrowableException.class, () -> tx.persistRowWithoutData());
        assertInstanceOf(jakarta.transaction.RollbackException.class, e.getCause());
        org.postgresql.util.PSQLException refusal = findPsql(e);
        assertNotNull(refusal, "the commit failed, but not because of the database's refusal: " + e);
        assertEquals("23000", refusal.getSQLState(), "integrity_constraint_violation");
        assertTrue(refusal.getServerErrorMessage().getMessage().matches("steering operator \\d+ has no data"),
                refusal.getMessage());
        assertEquals(before, tx.operators());
    }

    @Test
    void strengthZeroGivesTheUnsteeredTextAndStrengthChangesIt() {
        SharedModels.require(MODEL);
        long id = build();
        String plain = given().contentType(ContentType.JSON)
                .body(body("model", MODEL, "prompt", "Once upon a time", "maxNewTokens", 16))
                .post("/api/generate").then().statusCode(200).extract().path("completion");
        steer("operatorId", id, "prompt", "Once upon a time", "strength", 0, "maxNewTokens", 16).then()
                .statusCode(200).body("normal.completion", equalTo(plain)).body("steered.completion", equalTo(plain));
        Response r = steer("operatorId", id, "prompt", "Once upon a time", "strength", 2, "maxNewTokens", 16)
                .then().statusCode(200)
                .body("kind", equalTo("operator")).body("operatorId", equalTo((int) id)).body("layer", equalTo(3))
                .body("normal.completion", equalTo(plain)).body("steered.completion", not(equalTo(plain)))
                .body("diagnostics.steps.size()", equalTo(16))
                .body("diagnostics.steps.residualNorm", everyItem(greaterThan(0f)))
                .body("diagnostics.steps.addedNorm", everyItem(greaterThan(0f)))
                .body("diagnostics.steps[0].raised.size()", lessThanOrEqualTo(5))
                .body("diagnostics.steps[0].raised[0].after", greaterThan(0f))
                .body("diagnostics.overhead", greaterThan(0f))
                .body("steered.perplexity", greaterThan(1f)).body("runId", notNullValue())
                .extract().response();
        long runId = r.jsonPath().getLong("runId");
        given().get("/api/runs/" + runId).then().statusCode(200)
                .body("operatorId", equalTo((int) id)).body("kind", equalTo("operator"))
                .body("request.strength", equalTo(2.0f)).body("request.layer", equalTo(3))
                .body("steered.completion", equalTo(r.path("steered.completion")))
                .body("diagnostics.steps.size()", equalTo(16));
        given().get("/api/runs?operatorId=" + id).then().statusCode(200)
                .body("id", hasItem((int) runId)).body("steeredCompletion", hasItem((String) r.path("steered.completion")));
        given().get("/api/runs/999999999").then().statusCode(404).body("error", equalTo("unknown_run"));
    }

    @Test
    void vectorSteeringIsTheBaselineAtTheSameLayer() {
        SharedModels.require(MODEL);
        steer("model", MODEL, "vector", body("conceptPrompt", CONCEPT), "prompt", "Once upon a time",
                "strength", 0, "maxNewTokens", 12).then().statusCode(200)
                .body("steered.completion", equalTo(steer("model", MODEL, "vector", body("conceptPrompt", CONCEPT),
                        "prompt", "Once upon a time", "strength", 0, "maxNewTokens", 12).path("normal.completion")));
        steer("model", MODEL, "vector", body("conceptPrompt", CONCEPT, "contrastPrompt", "Once upon a time"),
                "prompt", "Once upon a time", "strength", 3, "maxNewTokens", 12).then().statusCode(200)
                .body("kind", equalTo("vector")).body("layer", equalTo(3)).body("operatorId", nullValue())
                .body("diagnostics.vectorNorm", greaterThan(0f))
                .body("steered.completion", not(equalTo(given().contentType(ContentType.JSON).body(body("model", MODEL,
                        "prompt", "Once upon a time", "maxNewTokens", 12)).post("/api/generate").path("completion"))));
    }

    @Test
    void sweepGivesAGridWithConceptScoreAndFluency() {
        SharedModels.require(MODEL);
        long id = build();
        Response r = given().contentType(ContentType.JSON).body(body("operatorId", id, "prompt", "Once upon a time",
                        "strengths", List.of(0, 1, 2), "layers", List.of(2, 3), "maxNewTokens", 10))
                .post("/api/steer/sweep").then().statusCode(200)
                .body("cells.size()", equalTo(6)).body("operatorLayer", equalTo(3))
                .body("baseline.perplexity", greaterThan(1f))
                .body("cells.perplexity", everyItem(greaterThan(1f)))
                .body("cells.conceptScore", everyItem(notNullValue()))
                .extract().response();
        String base = r.path("baseline.completion");
        assertEquals(List.of(base, base), r.path("cells.findAll { it.strength == 0 }.completion"));
        assertEquals(List.of(2, 2, 2, 3, 3, 3), r.path("cells.layer"));
    }

    @Test
    void shouldRejectBadSteeringInputNamingTheField() {
        SharedModels.require(MODEL);
        long id = build();
        record Case(String path, Map<String, Object> body, int status, String code) {
        }
        for (Case c : List.of(
                new Case("/api/steer", body("operatorId", id, "prompt", "a", "strength", 10.5), 400, "invalid_strength"),
                new Case("/api/steer", body("operatorId", id, "prompt", "a", "strength", -11), 400, "invalid_strength"),
                new Case("/api/steer", body("operatorId", id, "prompt", "a", "layer", 0), 400, "invalid_layer"),
                new Case("/api/steer", body("operatorId", id, "prompt", "a", "layer", 6), 400, "invalid_layer"),
                new Case("/api/steer", body("operatorId", id), 400, "invalid_prompt"),
                new Case("/api/steer", body("prompt", "a"), 400, "invalid_operatorId"),
                new Case("/api/steer", body("operatorId", id, "vector", body("conceptPrompt", "x"), "prompt", "a"),
                        400, "invalid_operatorId"),
                new Case("/api/steer", body("vector", body(), "prompt", "a"), 400, "invalid_vector.conceptPrompt"),
                new Case("/api/steer", body("operatorId", id, "prompt", "a", "maxNewTokens", 0), 400,
                        "invalid_maxNewTokens"),
                new Case("/api/steer", body("operatorId", 999999999, "prompt", "a"), 404, "unknown_operator"),
                new Case("/api/steer/sweep", body("operatorId", id, "prompt", "a", "strengths", List.of()), 400,
                        "invalid_strengths"),
                new Case("/api/steer/sweep", body("operatorId", id, "prompt", "a", "strengths", List.of(1, 20)), 400,
                        "invalid_strengths"),
                new Case("/api/steer/sweep", body("operatorId", id, "prompt", "a", "strengths", List.of(1),
                        "layers", List.of(9)), 400, "invalid_layers"),
                new Case("/api/operators", body("name", "x", "model", MODEL), 400, "invalid_conceptPrompt"),
                new Case("/api/operators", body("model", MODEL, "conceptPrompt", "a"), 400, "invalid_name"),
                new Case("/api/operators", body("name", "x", "model", MODEL, "conceptPrompt", "a", "layer", 6), 400,
                        "invalid_layer"),
                new Case("/api/operators", body("name", "x", "model", MODEL, "conceptPrompt", "a", "form", "dense"),
                        400, "invalid_form"),
                new Case("/api/operators", body("name", "x", "model", MODEL, "conceptPrompt", "a", "rank", 3), 400,
                        "invalid_rank"),
                new Case("/api/operators", body("name", "x", "model", MODEL, "conceptPrompt", "a", "form", "lowrank",
                        "rank", 65), 400, "invalid_rank"),
                new Case("/api/operators", body("name", "x", "model", MODEL, "conceptPrompt", "a", "form", "lowrank",
                        "energy", 1.5), 400, "invalid_energy"),
                new Case("/api/operators", body("name", "x", "model", "nope", "conceptPrompt", "a"), 404,
                        "unknown_model"))) {
            given().contentType(ContentType.JSON).body(c.body()).post(c.path()).then()
                    .statusCode(c.status()).body("error", equalTo(c.code()))
                    .body(not(containsString("at lab.steering")));
        }
    }

    /** The first PSQLException among the causes and suppressed exceptions of {@code t}, or null. */
    static org.postgresql.util.PSQLException findPsql(Throwable t) {
        if (t == null) {
            return null;
        }
        if (t instanceof org.postgresql.util.PSQLException p) {
            return p;
        }
        for (Throwable s : t.getSuppressed()) {
            org.postgresql.util.PSQLException p = findPsql(s);
            if (p != null) {
                return p;
            }
        }
        return t.getCause() == t ? null : findPsql(t.getCause());
    }

    /** Direct database access for the tests. */
    @jakarta.enterprise.context.ApplicationScoped
    public static class TxHelper {

        @Transactional
        public long operators() {
            return OperatorRecord.count();
        }

        @Transactional
        public long runs() {
            return SteeringRun.count();
        }

        /** Inserts a row and no data: the deferred trigger must refuse the commit. */
        @Transactional
        public void persistRowWithoutData() {
            OperatorRecord r = new OperatorRecord();
            r.name = "orphan";
            r.modelId = "m";
            r.modelFingerprint = "f";
            r.conceptPrompt = "c";
            r.conceptIds = "[1]";
            r.layer = 1;
            r.form = "full";
            r.dtype = "F32";
            r.sizeBytes = 1;
            r.sha256 = "00";
            r.createdAt = OffsetDateTime.now();
            r.persist();
        }
    }
}
