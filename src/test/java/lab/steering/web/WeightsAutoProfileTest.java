package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import lab.steering.model.WeightStorage;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.Test;

/**
 * LAB_MODEL_WEIGHTS=auto (the default) under a 20 MB budget: a bfloat16 model whose float32 copy fits is held as
 * float32; one whose float32 copy (about 23 MB with the margin) does not fit is held compact (about 8 MB) instead of
 * being refused, and generates the greedy tokens of the same checkpoint loaded as float32 outside the app.
 */
@QuarkusTest
@TestProfile(WeightsAutoProfileTest.Auto.class)
@QuarkusTestResource(value = WeightsAutoProfileTest.Folders.class, restrictToAnnotatedClass = true)
class WeightsAutoProfileTest {

    static final Path DIR = Path.of("target", "test-models-auto");
    static final String PROMPT = "t1 t5 t9 t3";

    public static class Auto implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("lab.project-models-dir", DIR.toString(),
                    "lab.models-dir", DIR.resolve("none").toString(),
                    "lab.default-model", "auto-small",
                    "lab.models.memory", "20M",
                    "lab.models.preload", "false",
                    "lab.models.weights", "auto");
        }
    }

    /** Writes the models folder before the app starts. */
    public static class Folders implements QuarkusTestResourceLifecycleManager {
        @Override
        public Map<String, String> start() {
            try {
                lab.steering.TestModels.emptyFolder(DIR);
                TinyCheckpoint.llama().hidden(64).layers(2).heads(4).kvHeads(2).intermediate(128).vocab(256)
                        .dtype("BF16").seed(3).writeTo(DIR.resolve("auto-small"));
                // 3.15 M parameters: 6 MB in bfloat16, 12.6 MB as float32 (about 23 MB with the margin)
                TinyCheckpoint.llama().hidden(256).layers(2).heads(4).kvHeads(4).intermediate(1024).vocab(4096)
                        .dtype("BF16").seed(5).writeTo(DIR.resolve("auto-big"));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return Map.of();
        }

        @Override
        public void stop() {
        }
    }

    @Test
    void holdsAsFloat32WhatFitsAndCompactWhatDoesNot() throws Exception {
        JsonPath models = given().get("/api/models").then().statusCode(200).extract().jsonPath();
        assertEquals("available", models.getString("find { it.id == 'auto-big' }.state"));
        long bigMb = models.getLong("find { it.id == 'auto-big' }.memoryMb");
        assertTrue(bigMb < 20 && bigMb >= 6, "auto-big is held compact: " + bigMb + " MB");

        List<Integer> ids = given().contentType(ContentType.JSON)
                .body(body("model", "auto-big", "prompt", PROMPT, "maxNewTokens", 6, "temperature", 0))
                .post("/api/generate").then().statusCode(200).extract().path("tokens.id");
        try (LanguageModel wide = LanguageModel.load(DIR.resolve("auto-big"), Device.cpu(), DataType.FLOAT32,
                DataType.FLOAT32, WeightStorage.FLOAT32)) {
            long[] prompt = wide.tokenizer().encode(PROMPT);
            List<Integer> expected = Generator.generate(wide, prompt, GenerationParams.greedy(6), Hooks.NONE)
                    .tokens().stream().map(t -> (int) t.id()).toList();
            assertEquals(expected, ids,
                    "compact in the app, float32 outside it: the same greedy tokens");
        }
        assertEquals("loaded", given().get("/api/models").then().extract()
                .path("find { it.id == 'auto-big' }.state"));

        // the small one's float32 copy fits: held as float32, twice its bfloat16 file
        given().contentType(ContentType.JSON)
                .body(body("model", "auto-small", "prompt", PROMPT, "maxNewTokens", 2, "temperature", 0))
                .post("/api/generate").then().statusCode(200);
        try (LanguageModel held = LanguageModel.load(DIR.resolve("auto-small"), Device.cpu(), DataType.FLOAT32,
                DataType.FLOAT32, WeightStorage.FLOAT32)) {
            long smallMb = given().get("/api/models").then().extract().jsonPath()
                    .getLong("find { it.id == 'auto-small' }.memoryMb");
            assertTrue(smallMb >= held.weightBytes() / 1048576, "auto-small is held as float32: " + smallMb + " MB");
        }
    }
}
