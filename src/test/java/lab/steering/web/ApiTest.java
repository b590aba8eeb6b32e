package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.everyItem;
import static org.hamcrest.Matchers.greaterThan;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.hasItems;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.notNullValue;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.util.List;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import lab.steering.store.GenerationRun;
import org.junit.jupiter.api.Test;

@QuarkusTest
@QuarkusTestResource(TestModels.class)
class ApiTest {

    @Test
    void shouldListLoadedModelsWithShapes() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        given().get("/api/models").then().statusCode(200)
                .body("id", hasItems("stories260K", "stories260K-text"))
                .body("find { it.id == 'stories260K' }.layers", equalTo(5))
                .body("find { it.id == 'stories260K' }.hiddenSize", equalTo(64))
                .body("find { it.id == 'stories260K' }.vocabSize", equalTo(512))
                .body("find { it.id == 'stories260K' }.architecture", equalTo("llama"))
                .body("find { it.id == 'stories260K' }.dtype", equalTo("float32"))
                .body("find { it.id == 'stories260K' }.device", startsWith("cpu"))
                .body("find { it.id == 'stories260K' }.state", org.hamcrest.Matchers.oneOf("available", "loading",
                        "loaded"))
                .body("id", not(hasItem("broken-unknown-arch")));
    }

    @Test
    void shouldReportBrokenFoldersAndStillStart() {
        given().get("/api/models/failures").then().statusCode(200)
                .body("find { it.id == 'broken-unknown-arch' }.error",
                        containsString("config.json: model_type 'mamba' is not supported"))
                .body("find { it.id == 'broken-no-weights' }.error", containsString("model.safetensors: missing"));
        if (SharedModels.present(SharedModels.STORIES)) {
            // its config.json scans fine: the shapes are checked when it loads, on its first use
            String shape = "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [172, 64], expected [100, 64]";
            given().contentType(ContentType.JSON).body(body("model", "broken-wrong-shape", "prompt", "t1 t2"))
                    .post("/api/generate").then().statusCode(500)
                    .body("error", equalTo("model_failed")).body("message", containsString(shape));
            given().get("/api/models/failures").then()
                    .body("find { it.id == 'broken-wrong-shape' }.error", containsString(shape));
            given().get("/api/models").then()
                    .body("find { it.id == 'broken-wrong-shape' }.state", equalTo("failed"))
                    .body("find { it.id == 'broken-wrong-shape' }.error", containsString(shape));
            given().contentType(ContentType.JSON).body(body("model", "stories260K", "prompt", "t1 t2",
                    "maxNewTokens", 2)).post("/api/generate").then().statusCode(200);
        }
    }

    @Test
    void shouldGenerateGreedyTextAndRecordTheRun() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        long before = countRuns();
        given().contentType(ContentType.JSON)
                .body(body("model", "stories260K-text", "prompt", "Once upon a time", "maxNewTokens", 12))
                .post("/api/generate").then().statusCode(200)
                .body("model", equalTo("stories260K-text"))
                .body("promptTokens.id", equalTo(List.of(1, 403, 407, 261, 378)))
                .body("completion", startsWith(", there was a little girl named Lily"))
                .body("tokens.size()", equalTo(12))
                .body("tokens.logprob", everyItem(not(greaterThan(0f))))
                .body("finishReason", equalTo("length"))
                .body("timings.promptMs", notNullValue())
                .body("runId", notNullValue());
        assertEquals(before + 1, countRuns());
    }

    @Test
    void sameSeedGivesSameTextAndOtherSeedsDiffer() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        Map<String, Object> req = body("model", "stories260K-text", "prompt", "Once upon a time", "maxNewTokens", 40,
                "temperature", 1.0, "topK", 40, "topP", 0.95, "seed", 7);
        String a = given().contentType(ContentType.JSON).body(req).post("/api/generate").then().statusCode(200)
                .extract().path("completion");
        String b = given().contentType(ContentType.JSON).body(req).post("/api/generate").then().statusCode(200)
                .extract().path("completion");
        req.put("seed", 8);
        String c = given().contentType(ContentType.JSON).body(req).post("/api/generate").then().statusCode(200)
                .extract().path("completion");
        assertEquals(a, b);
        assertNotEquals(a, c);
    }

    @Test
    void noRepeatNgramSizeLeavesNoTrigramTwiceAndIsStoredWithTheRun() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        io.restassured.path.json.JsonPath plain = given().contentType(ContentType.JSON)
                .body(body("model", "stories260K-text", "prompt", "Once upon a time", "maxNewTokens", 80))
                .post("/api/generate").then().statusCode(200).extract().jsonPath();
        io.restassured.path.json.JsonPath banned = given().contentType(ContentType.JSON)
                .body(body("model", "stories260K-text", "prompt", "Once upon a time", "maxNewTokens", 80,
                        "noRepeatNgramSize", 3, "repetitionPenalty", 1.0))
                .post("/api/generate").then().statusCode(200).extract().jsonPath();
        assertTrue(repeatedTrigrams(plain) > 0, "the tiny model repeats itself without the ban: "
                + plain.getString("completion"));
        assertEquals(0, repeatedTrigrams(banned), banned.getString("completion"));
        GenerationRun run = GenerationRun.findById(banned.getLong("runId"));
        assertTrue(run.params.replace(" ", "").contains("\"noRepeatNgramSize\":3"), run.params);
    }

    /** Trigrams of ids (prompt and completion) that occur more than once. */
    static int repeatedTrigrams(io.restassured.path.json.JsonPath gen) {
        List<Integer> ids = new java.util.ArrayList<>(gen.getList("promptTokens.id", Integer.class));
        ids.addAll(gen.getList("tokens.id", Integer.class));
        java.util.Set<List<Integer>> seen = new java.util.HashSet<>();
        int repeated = 0;
        for (int i = 0; i + 3 <= ids.size(); i++) {
            if (!seen.add(List.copyOf(ids.subList(i, i + 3)))) {
                repeated++;
            }
        }
        return repeated;
    }

    @Test
    void shouldRejectUnknownModel() {
        given().contentType(ContentType.JSON).body(body("model", "nope", "prompt", "hi"))
                .post("/api/generate").then().statusCode(404)
                .body("error", equalTo("unknown_model")).body("message", containsString("'nope'"));
    }

    @Test
    void shouldRejectBadFieldsNamingThem() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        record Case(Map<String, Object> body, String field) {
        }
        for (Case c : List.of(
                new Case(body("model", "stories260K-text", "prompt", ""), "prompt"),
                new Case(body("model", "stories260K-text"), "prompt"),
                new Case(body("model", "stories260K-text", "prompt", "a", "maxNewTokens", 0), "maxNewTokens"),
                new Case(body("model", "stories260K-text", "prompt", "a", "maxNewTokens", 5000), "maxNewTokens"),
                new Case(body("model", "stories260K-text", "prompt", "a", "temperature", -1), "temperature"),
                new Case(body("model", "stories260K-text", "prompt", "a", "topP", 0), "topP"),
                new Case(body("model", "stories260K-text", "prompt", "a", "topK", -3), "topK"),
                new Case(body("model", "stories260K-text", "prompt", "a", "repetitionPenalty", 0), "repetitionPenalty"),
                new Case(body("model", "stories260K-text", "prompt", "a", "repetitionPenalty", 11),
                        "repetitionPenalty"),
                new Case(body("model", "stories260K-text", "prompt", "a", "noRepeatNgramSize", -1), "noRepeatNgramSize"),
                new Case(body("model", "stories260K-text", "prompt", "a", "noRepeatNgramSize", 33), "noRepeatNgramSize"),
                new Case(body("model", "stories260K-text", "prompt", "a", "maxNewTokens", "many"), "maxNewTokens"),
                new Case(body("model", "stories260K-text", "prompt", "Lily ".repeat(600)), "prompt"))) {
            given().contentType(ContentType.JSON).body(c.body()).post("/api/generate").then()
                    .statusCode(400)
                    .body("error", equalTo("invalid_" + c.field()))
                    .body("message", startsWith(c.field()))
                    .body(not(containsString("at lab.steering")));
        }
    }

    @Test
    void shouldRejectMalformedJson() {
        given().contentType(ContentType.JSON).body("{\"prompt\": ").post("/api/generate").then().statusCode(400)
                .body("error", equalTo("bad_json"));
    }

    @Test
    void healthIncludesDatabaseAndModels() {
        given().get("/q/health").then().statusCode(200)
                .body("checks.name", hasItems("models", "Database connections health check"));
    }

    @Test
    void openApiAndHomePageAreServed() {
        given().get("/q/openapi").then().statusCode(200).body(containsString("/api/generate"));
        given().get("/").then().statusCode(200).body(containsString("hx-post=\"/ui/generate\""));
        given().get("/webjars/htmx.org/dist/htmx.min.js").then().statusCode(200);
    }

    @Test
    void homePageFormGeneratesAFragmentOrAnInlineError() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        given().header("HX-Request", "true").formParam("model", "stories260K-text")
                .formParam("prompt", "Once upon a time")
                .formParam("maxNewTokens", "8").post("/ui/generate").then().statusCode(200)
                .body(containsString("there was a little girl")).body(not(containsString("<html")));
        given().header("HX-Request", "true").formParam("model", "stories260K-text").formParam("prompt", "<b>x</b>")
                .formParam("maxNewTokens", "0").post("/ui/generate").then().statusCode(200)
                .body(containsString("maxNewTokens: must be between 1 and 1024"))
                .body(not(containsString("<b>x</b>")));
    }

    @jakarta.transaction.Transactional
    long countRuns() {
        return GenerationRun.count();
    }
}
