package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.everyItem;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.nullValue;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import jakarta.transaction.Transactional;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import lab.steering.steer.ControlVectorFile;
import lab.steering.store.VectorRecord;
import org.junit.jupiter.api.Test;

/**
 * Saved vectors end to end against PostgreSQL: build, library, GGUF export and import (the app's own files bit for
 * bit, a reference file written by llama.cpp's gguf package, fuzzed files refused with 400 while the app stays
 * healthy) and steering with {@code vectorId}; and the other export for other tools, an operator's low-rank factors.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class VectorsApiTest {

    static final String MODEL = SharedModels.STORIES_TEXT;
    static final String CONCEPT = "The dog barked at the cat in the garden";
    static final String PROMPT = "Once upon a time";

    @Inject
    Counter counter;

    /** Direct database access for the tests. */
    @jakarta.enterprise.context.ApplicationScoped
    public static class Counter {
        @Transactional
        public long vectors() {
            return VectorRecord.count();
        }
    }

    static long build(Object... extra) {
        Map<String, Object> b = body("name", "dog vector", "model", MODEL, "conceptPrompt", CONCEPT);
        b.putAll(body(extra));
        return given().contentType(ContentType.JSON).body(b).post("/api/vectors").then().statusCode(201)
                .extract().jsonPath().getLong("id");
    }

    static Response steer(Object... kv) {
        return given().contentType(ContentType.JSON).body(body(kv)).post("/api/steer");
    }

    static byte[] export(long id) {
        return given().get("/api/vectors/" + id + "/export?format=gguf").then().statusCode(200)
                .contentType("application/octet-stream").extract().asByteArray();
    }

    static Response importFile(byte[] file, String query) {
        return given().contentType("application/octet-stream").body(file).post("/api/vectors/import" + query);
    }

    static byte[] reference() throws IOException {
        try (InputStream in = VectorsApiTest.class.getResourceAsStream("/gguf/reference-controlvector.gguf")) {
            return in.readAllBytes();
        }
    }

    @Test
    void shouldBuildListPatchAndDeleteVectors() {
        SharedModels.require(MODEL);
        long one = build("tags", List.of("animals"), "contrastPrompt", PROMPT);
        given().get("/api/vectors/" + one).then().statusCode(200)
                .body("kind", equalTo("vector")).body("layers", equalTo(List.of(3)))
                .body("ggufDirections", equalTo(List.of(1))).body("dim", equalTo(64))
                .body("source", equalTo("built")).body("contrastPrompt", equalTo(PROMPT))
                .body("conceptIds[0]", equalTo(1)).body("tags", equalTo(List.of("animals")));
        long range = build("name", "zebra range", "layers", List.of(5, 3, 4));
        given().get("/api/vectors/" + range).then().body("layers", equalTo(List.of(3, 4, 5)))
                .body("ggufDirections", equalTo(List.of(1, 2, 3)));
        given().get("/api/vectors?model=" + MODEL + "&q=ZEBRA").then().statusCode(200)
                .body("id", hasItem((int) range)).body("name", everyItem(containsString("zebra")));
        given().get("/api/vectors?q=animals").then().body("id", hasItem((int) one));
        given().contentType(ContentType.JSON).body(body("name", "zebra 2", "tags", List.of("a")))
                .patch("/api/vectors/" + range).then().statusCode(200)
                .body("name", equalTo("zebra 2")).body("tags", equalTo(List.of("a")));
        given().contentType(ContentType.JSON).body(body("layers", List.of(3))).patch("/api/vectors/" + range)
                .then().statusCode(400).body("error", equalTo("invalid_layers"));
        given().delete("/api/vectors/" + range).then().statusCode(204);
        given().get("/api/vectors/" + range).then().statusCode(404).body("error", equalTo("unknown_vector"));
        given().delete("/api/vectors/" + range).then().statusCode(404);
        given().get("/api/vectors/" + range + "/export").then().statusCode(404);
    }

    @Test
    void shouldRejectBadVectorsNamingTheField() {
        SharedModels.require(MODEL);
        record Case(Map<String, Object> body, int status, String code) {
        }
        for (Case c : List.of(
                new Case(body("model", MODEL, "conceptPrompt", "a"), 400, "invalid_name"),
                new Case(body("name", "x", "model", MODEL), 400, "invalid_conceptPrompt"),
                new Case(body("name", "x", "model", MODEL, "conceptPrompt", "a", "layer", 2), 400, "invalid_layer"),
                new Case(body("name", "x", "model", MODEL, "conceptPrompt", "a", "layer", 6), 400, "invalid_layer"),
                new Case(body("name", "x", "model", MODEL, "conceptPrompt", "a", "layers", List.of(3, 3)), 400,
                        "invalid_layers"),
                new Case(body("name", "x", "model", MODEL, "conceptPrompt", "a", "layers", List.of()), 400,
                        "invalid_layers"),
                new Case(body("name", "x", "model", MODEL, "conceptPrompt", "a", "layer", 3, "layers", List.of(4)),
                        400, "invalid_layers"),
                new Case(body("name", "x", "model", "nope", "conceptPrompt", "a"), 404, "unknown_model"))) {
            given().contentType(ContentType.JSON).body(c.body()).post("/api/vectors").then()
                    .statusCode(c.status()).body("error", equalTo(c.code()))
                    .body(not(containsString("at lab.steering")));
        }
        given().get("/api/vectors/x").then().statusCode(400).body("error", equalTo("invalid_id"));
        long id = build();
        given().get("/api/vectors/" + id + "/export?format=safetensors").then().statusCode(400)
                .body("error", equalTo("invalid_format"));
    }

    @Test
    void exportThenImportGivesTheSameVectorToTheLastBit() {
        SharedModels.require(MODEL);
        long id = build("layers", List.of(3, 5), "contrastPrompt", PROMPT);
        Response ex = given().get("/api/vectors/" + id + "/export").then().statusCode(200)
                .header("Content-Disposition", containsString(".gguf")).extract().response();
        byte[] file = ex.asByteArray();
        String sha = given().get("/api/vectors/" + id).then().extract().path("sha256");
        assertEquals(sha, ex.header("X-Content-SHA256"));
        long copy = importFile(file, "?name=copy&tags=x,y&sha256=" + sha).then().statusCode(201)
                .body("model", equalTo(MODEL)).body("sha256", equalTo(sha)).body("source", equalTo("imported"))
                .body("layers", equalTo(List.of(3, 5))).body("conceptPrompt", equalTo(CONCEPT))
                .body("contrastPrompt", equalTo(PROMPT)).body("tags", equalTo(List.of("x", "y")))
                .extract().jsonPath().getLong("id");
        assertNotEquals(id, copy);
        assertArrayEquals(file, export(copy), "the same vector, bit for bit (and the same file)");
        Object a = steer("vectorId", id, "prompt", PROMPT, "strength", 3, "maxNewTokens", 12).then().statusCode(200)
                .extract().path("steered.completion");
        Object b = steer("vectorId", copy, "prompt", PROMPT, "strength", 3, "maxNewTokens", 12).then()
                .statusCode(200).extract().path("steered.completion");
        assertEquals(a, b);
        // another model with the same fingerprint takes it; one with another fingerprint refuses it
        importFile(file, "?model=" + SharedModels.STORIES).then().statusCode(201)
                .body("model", equalTo(SharedModels.STORIES));
        importFile(file, "?model=" + TestModels.VARIANT).then().statusCode(409)
                .body("error", equalTo("fingerprint_mismatch"));
    }

    @Test
    void aSavedVectorSteersAsTheVectorBuiltForTheRequest() {
        SharedModels.require(MODEL);
        long id = build();
        String plain = steer("vectorId", id, "prompt", PROMPT, "strength", 0, "maxNewTokens", 12).then()
                .statusCode(200).extract().path("normal.completion");
        Response r = steer("vectorId", id, "prompt", PROMPT, "strength", 3, "maxNewTokens", 12).then()
                .statusCode(200).body("kind", equalTo("vector")).body("vectorId", equalTo((int) id))
                .body("operatorId", nullValue()).body("layer", equalTo(3))
                .body("normal.completion", equalTo(plain)).body("steered.completion", not(equalTo(plain)))
                .extract().response();
        String adHoc = steer("model", MODEL, "vector", body("conceptPrompt", CONCEPT), "prompt", PROMPT,
                "strength", 3, "maxNewTokens", 12).then().statusCode(200).extract().path("steered.completion");
        assertEquals(adHoc, r.path("steered.completion"), "float32 storage does not change the greedy tokens");
        long run = r.jsonPath().getLong("runId");
        given().get("/api/runs/" + run).then().statusCode(200).body("kind", equalTo("vector"))
                .body("request.vectorId", equalTo((int) id));
        steer("vectorId", id, "operatorId", 1, "prompt", PROMPT).then().statusCode(400)
                .body("error", equalTo("invalid_operatorId"));
        steer("vectorId", 999999999, "prompt", PROMPT).then().statusCode(404).body("error", equalTo("unknown_vector"));
        steer("vectorId", id, "prompt", PROMPT, "layer", 4).then().statusCode(400)
                .body("error", equalTo("invalid_layer")).body("message", containsString("[3]"));
        steer("vectorId", id, "model", TestModels.VARIANT, "prompt", PROMPT).then().statusCode(409)
                .body("error", equalTo("fingerprint_mismatch"));
    }

    @Test
    void aReferenceGgufFileImportsAndSteers() throws IOException {
        SharedModels.require(MODEL);
        byte[] file = reference();
        importFile(file, "").then().statusCode(400).body("error", equalTo("invalid_model"));
        importFile(file, "?model=tiny-llama").then().statusCode(400).body("error", equalTo("invalid_file"))
                .body("message", containsString("width 64"));
        long id = importFile(file, "?model=" + MODEL).then().statusCode(201)
                .body("layers", equalTo(List.of(3, 4, 5))).body("ggufDirections", equalTo(List.of(1, 2, 3)))
                .body("source", equalTo("imported")).body("conceptPrompt", equalTo(""))
                .body("name", containsString("llama")).extract().jsonPath().getLong("id");
        // the stored file holds the reference's directions bit for bit
        ControlVectorFile.Decoded ref = ControlVectorFile.decode(file);
        ControlVectorFile.Decoded stored = ControlVectorFile.decode(export(id));
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(ref.vector().directions()[i], stored.vector().directions()[i]);
        }
        String plain = steer("vectorId", id, "prompt", PROMPT, "strength", 0, "maxNewTokens", 12).then()
                .statusCode(200).extract().path("steered.completion");
        steer("vectorId", id, "prompt", PROMPT, "strength", 4, "maxNewTokens", 12).then().statusCode(200)
                .body("normal.completion", equalTo(plain)).body("steered.completion", not(equalTo(plain)))
                .body("layer", equalTo(3));
        steer("vectorId", id, "prompt", PROMPT, "strength", 4, "maxNewTokens", 12, "layer", 5).then()
                .statusCode(200).body("layer", equalTo(5));
    }

    @Test
    void aDirectionPastTheModelsLayersIsRefusedByName() throws IOException {
        SharedModels.require(MODEL);
        byte[] file = reference(); // direction.1..3; make the last one direction.4 (after layer 4, the last of 5)
        String text = new String(file, java.nio.charset.StandardCharsets.ISO_8859_1);
        int at = text.indexOf("direction.3");
        file[at + "direction.".length()] = '4';
        importFile(file, "?model=" + MODEL).then().statusCode(400).body("error", equalTo("invalid_file"))
                .body("message", containsString("direction.4")).body("message", containsString("direction.1..direction.3"));
    }

    @Test
    void lowRankOperatorsExportTheirFactorsWithJsonMetadata() throws IOException {
        SharedModels.require(MODEL);
        long lr = given().contentType(ContentType.JSON).body(body("name", "dog r6", "model", MODEL, "conceptPrompt",
                CONCEPT, "form", "lowrank", "rank", 6)).post("/api/operators").then().statusCode(201)
                .extract().jsonPath().getLong("id");
        byte[] file = given().get("/api/operators/" + lr + "/export?format=lowrank").then().statusCode(200)
                .header("Content-Disposition", containsString("lowrank")).extract().asByteArray();
        try (var r = lab.steering.model.SafetensorsReader.fromBytes(file, "lowrank export")) {
            assertEquals("steering-lab-lowrank", r.metadata().get("format"));
            var meta = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.metadata().get("steering_lab"));
            assertEquals(3, meta.get("layer").asInt());
            assertEquals(6, meta.get("rank").asInt());
            assertEquals(CONCEPT, meta.get("conceptPrompt").asText());
            assertEquals(64, meta.get("fingerprint").asText().length());
            assertEquals(true, meta.get("fidelity").get("meanCosine").asDouble() > 0.5);
            assertEquals(true, meta.get("convention").get("apply").asText().contains("||h_k|| / (2 ||a_k||)"));
            assertArrayEquals(new long[] {18, 64, 6}, r.info("u").shape());
            assertArrayEquals(new long[] {18, 6}, r.info("s").shape());
        }
        long dense = given().contentType(ContentType.JSON).body(body("name", "dog", "model", MODEL, "conceptPrompt",
                CONCEPT)).post("/api/operators").then().statusCode(201).extract().jsonPath().getLong("id");
        given().get("/api/operators/" + dense + "/export?format=lowrank").then().statusCode(400)
                .body("error", equalTo("invalid_format")).body("message", containsString("dense"));
        given().get("/api/operators/" + dense + "/export?format=npz").then().statusCode(400)
                .body("error", equalTo("invalid_format"));
        given().get("/api/operators/" + dense + "/export?format=safetensors").then().statusCode(200);
    }

    @Test
    void fuzzedGgufFilesAreRefusedWith400AndTheAppStaysHealthy() throws IOException {
        SharedModels.require(MODEL);
        long before = counter.vectors();
        byte[] file = reference();
        SplittableRandom r = new SplittableRandom(7);
        int refused = 0;
        for (int trial = 0; trial < 60; trial++) {
            byte[] bad;
            if (trial % 3 == 0) {
                bad = Arrays.copyOf(file, r.nextInt(file.length));
            } else if (trial % 3 == 1) {
                bad = file.clone();
                // a header or metadata byte: these flips are refused (a flip in the data could be a valid vector)
                bad[r.nextInt(0x150)] ^= (byte) (1 << r.nextInt(8));
            } else {
                bad = file.clone();
                int[] counts = {8, 16, 0xba, 0xc2}; // tensor_count, kv_count, direction.1's n_dims and width
                int where = counts[r.nextInt(counts.length)];
                ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putLong(where, Long.MAX_VALUE - r.nextInt(1000));
            }
            int status = importFile(bad, "?model=" + MODEL).then().extract().statusCode();
            if (status == 400) {
                refused++;
                importFile(bad, "?model=" + MODEL).then().body("error", equalTo("invalid_file"))
                        .body("message", startsWith("file: ")).body(not(containsString("at lab.steering")));
            } else {
                assertEquals(201, status, "trial " + trial + ": a damaged file is refused or, if still valid, stored");
            }
        }
        assertEquals(true, refused >= 45, "refused " + refused + " of 60");
        given().get("/q/health").then().statusCode(200);
        long after = counter.vectors();
        assertEquals(60 - refused, after - before, "nothing is written for a refused file");
        build(); // and the library still works
    }
}
