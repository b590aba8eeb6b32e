package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasSize;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.util.List;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import org.junit.jupiter.api.Test;

/**
 * Values that used to slip through: the NUL character (a 500 from PostgreSQL, quoting its SQL), fractions and
 * out-of-range numbers in whole-number fields (silently truncated, or an unnamed bad_json), ids that are not numbers
 * (a generic 404), prompts of megabytes (seconds of tokenizing before the refusal). Each is now a 400 naming its field.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class InputChecksTest {

    static final String MODEL = SharedModels.STORIES_TEXT;
    static final String NUL = "a\u0000b";

    static void refused(Map<String, Object> body, String path, String code) {
        given().contentType(ContentType.JSON).body(body).post(path).then().statusCode(400)
                .contentType(ContentType.JSON).body("error", equalTo(code))
                .body("message", not(containsString("insert into"))).body("message", not(containsString("SQL")));
    }

    /** A number or a boolean where text is expected is refused, naming the field, not read as its digits. */
    @Test
    void textFieldsTakeTextOnly() {
        SharedModels.require(MODEL);
        refused(body("model", MODEL, "prompt", 42, "maxNewTokens", 2), "/api/generate", "invalid_prompt");
        refused(body("model", MODEL, "prompt", 4.5, "maxNewTokens", 2), "/api/generate", "invalid_prompt");
        refused(body("model", true, "prompt", "a", "maxNewTokens", 2), "/api/generate", "invalid_model");
        refused(body("name", 7, "model", MODEL, "conceptPrompt", "The dog"), "/api/operators", "invalid_name");
        refused(body("model", MODEL, "prompt", List.of("a"), "maxNewTokens", 2), "/api/generate", "invalid_prompt");
        given().contentType(ContentType.JSON).body(body("model", MODEL, "prompt", "42", "maxNewTokens", 2))
                .post("/api/generate").then().statusCode(200);
    }

    @Test
    void theNulCharacterIsRefusedWhereverTextGoes() {
        SharedModels.require(MODEL);
        refused(body("model", MODEL, "prompt", NUL, "maxNewTokens", 2), "/api/generate", "invalid_prompt");
        refused(body("models", List.of(MODEL), "prompt", NUL), "/api/compare", "invalid_prompt");
        refused(body("name", NUL, "model", MODEL, "conceptPrompt", "The dog"), "/api/operators", "invalid_name");
        refused(body("name", "n", "model", MODEL, "conceptPrompt", NUL), "/api/operators", "invalid_conceptPrompt");
        refused(body("name", "n", "description", NUL, "model", MODEL, "conceptPrompt", "The dog"), "/api/operators",
                "invalid_description");
        refused(body("model", MODEL, "vector", Map.of("conceptPrompt", NUL), "prompt", "Once upon a time",
                "maxNewTokens", 2), "/api/steer", "invalid_vector.conceptPrompt");
        long id = SteeringApiTest.build();
        given().contentType(ContentType.JSON).body(body("description", NUL)).patch("/api/operators/" + id).then()
                .statusCode(400).body("error", equalTo("invalid_description"));
        given().contentType(ContentType.JSON).body(body("name", "kept", "layer", 1)).patch("/api/operators/" + id)
                .then().statusCode(400).body("error", equalTo("invalid_layer"))
                .body("message", containsString("cannot be changed"));
        given().get("/api/operators/" + id).then().statusCode(200).body("name", not(equalTo("kept")));
        given().contentType(ContentType.URLENC).formParam("description", NUL).post("/operators/" + id).then()
                .statusCode(200).body(containsString("NUL character"));
    }

    @Test
    void wholeNumberFieldsTakeWholeNumbersOnly() {
        SharedModels.require(MODEL);
        refused(body("model", MODEL, "prompt", "Once", "maxNewTokens", 2.5), "/api/generate", "invalid_maxNewTokens");
        refused(body("model", MODEL, "prompt", "Once", "maxNewTokens", 3_000_000_000L), "/api/generate",
                "invalid_maxNewTokens");
        refused(body("model", MODEL, "prompt", "Once", "seed", 1e30), "/api/generate", "invalid_seed");
        refused(body("model", MODEL, "vector", Map.of("conceptPrompt", "dog"), "prompt", "Once", "layer", 2.9,
                "maxNewTokens", 2), "/api/steer", "invalid_layer");
        given().contentType(ContentType.JSON).body(body("model", MODEL, "prompt", "Once", "maxNewTokens", 2.0))
                .post("/api/generate").then().statusCode(200).body("tokens", hasSize(2));
    }

    @Test
    void idsAndNumbersInTheAddressAreNamedWhenTheyAreNotNumbers() {
        given().get("/api/operators/abc").then().statusCode(400).body("error", equalTo("invalid_id"));
        given().get("/api/operators/abc/export").then().statusCode(400).body("error", equalTo("invalid_id"));
        given().delete("/api/operators/abc").then().statusCode(400).body("error", equalTo("invalid_id"));
        given().get("/api/runs/abc").then().statusCode(400).body("error", equalTo("invalid_id"));
        given().get("/api/operators?limit=abc").then().statusCode(400).body("error", equalTo("invalid_limit"));
        given().get("/api/runs?limit=abc").then().statusCode(400).body("error", equalTo("invalid_limit"));
        given().get("/api/runs?operatorId=abc").then().statusCode(400).body("error", equalTo("invalid_operatorId"));
        given().get("/operators/abc").then().statusCode(400).contentType(ContentType.HTML)
                .body(containsString("id is a whole number"));
        given().get("/runs/abc").then().statusCode(400).contentType(ContentType.HTML)
                .body(containsString("id is a whole number"));
        // the API's description still says these are integers (they are read as text to name a bad one)
        JsonPath api = given().queryParam("format", "json").get("/q/openapi").then().statusCode(200).extract()
                .jsonPath();
        assertEquals("integer", api.getString("paths.'/api/operators/{id}'.get.parameters[0].schema.type"));
        assertEquals("integer",
                api.getString("paths.'/api/runs'.get.parameters.find { it.name == 'limit' }.schema.type"));
        org.junit.jupiter.api.Assertions.assertTrue(api.getString(
                "paths.'/api/operators/{id}'.patch.requestBody.content.'application/json'.schema").contains("Patch"));
    }

    @Test
    void aSweepNamesItsLayersField() {
        SharedModels.require(MODEL);
        long id = SteeringApiTest.build();
        refused(body("operatorId", id, "prompt", "Once", "strengths", List.of(1), "layers", List.of(0)),
                "/api/steer/sweep", "invalid_layers");
    }

    @Test
    void aPromptTooLongForAnyTokenizationIsRefusedBeforeTokenizing() {
        SharedModels.require(MODEL);
        String huge = "x".repeat(512 * 256 + 1); // the model's context is 512 tokens
        given().contentType(ContentType.JSON).body(body("model", MODEL, "prompt", huge)).post("/api/generate")
                .then().statusCode(400).body("error", equalTo("invalid_prompt"))
                .body("message", containsString("131073 characters"));
    }

    @Test
    void theGeneratePageWorksAsAPlainForm() {
        SharedModels.require(MODEL);
        String page = given().contentType(ContentType.URLENC).formParams(Map.of("model", MODEL, "prompt",
                "Once upon a time", "maxNewTokens", "3")).post("/ui/generate").then().statusCode(200)
                .extract().asString();
        org.junit.jupiter.api.Assertions.assertTrue(page.contains("<h1>Generate</h1>") && page.contains("3 tokens"),
                page);
        org.junit.jupiter.api.Assertions.assertTrue(page.contains("<option value=\"" + MODEL + "\" selected>"), page);
        String fragment = given().header("HX-Request", "true").contentType(ContentType.URLENC).formParams(Map.of(
                "model", MODEL, "prompt", "Once upon a time", "maxNewTokens", "3")).post("/ui/generate").then()
                .statusCode(200).extract().asString();
        org.junit.jupiter.api.Assertions.assertFalse(fragment.contains("<h1>"), fragment);
        given().get("/").then().statusCode(200).body(containsString("method=\"post\" action=\"/ui/generate\""));
    }

    @Test
    void aComparisonAnsweredAtOnceCarriesItsStoredTimes() {
        SharedModels.require(MODEL);
        JsonPath now = given().contentType(ContentType.JSON).body(body("models", List.of(MODEL), "prompt",
                "Once upon a time")).post("/api/compare").then().statusCode(200).extract().jsonPath();
        JsonPath stored = given().get("/api/compare/" + now.getLong("id")).then().statusCode(200).extract().jsonPath();
        assertEquals(stored.getString("createdAt"), now.getString("createdAt"));
        assertEquals(stored.getString("finishedAt"), now.getString("finishedAt"));
        JsonPath created = given().contentType(ContentType.JSON).body(body("name", "times", "model", MODEL,
                "conceptPrompt", "The dog")).post("/api/operators").then().statusCode(201).extract().jsonPath();
        given().get("/api/operators/" + created.getLong("id")).then().statusCode(200)
                .body("createdAt", equalTo(created.getString("createdAt")));
    }
}
