package lab.steering.web;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.nullValue;
import static org.hamcrest.Matchers.startsWith;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import org.junit.jupiter.api.Test;

/** With the database unreachable: library calls answer 503 JSON, generation and vector steering still work. */
@QuarkusTest
@TestProfile(DatabaseDownProfileTest.Down.class)
@QuarkusTestResource(TestModels.class)
class DatabaseDownProfileTest {

    /** The datasource points at a closed port; no migration at start. */
    public static class Down implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("quarkus.datasource.jdbc.url", "jdbc:postgresql://localhost:1/steering_down",
                    "quarkus.datasource.jdbc.acquisition-timeout", "500ms",
                    "quarkus.flyway.migrate-at-start", "false",
                    "quarkus.flyway.clean-at-start", "false");
        }
    }

    @Test
    void libraryCallsAnswer503AndGenerationKeepsWorking() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        for (String path : new String[] {"/api/operators", "/api/operators/1", "/api/runs", "/api/runs/1",
                "/api/operators/1/export"}) {
            given().get(path).then().statusCode(503).contentType(ContentType.JSON)
                    .body("error", equalTo("database_unavailable"));
        }
        dumpThreadsIfItHangs(() -> given().config(TWENTY_SECONDS).contentType(ContentType.JSON)
                .body(Map.of("name", "x", "model", SharedModels.STORIES_TEXT, "conceptPrompt", "The dog"))
                .post("/api/operators").then().statusCode(503).body("error", equalTo("database_unavailable")));
        given().contentType(ContentType.JSON).body(Map.of("operatorId", 1, "prompt", "Once"))
                .post("/api/steer").then().statusCode(503).body("error", equalTo("database_unavailable"));
        given().contentType(ContentType.JSON).body(Map.of("model", SharedModels.STORIES_TEXT,
                        "prompt", "Once upon a time", "maxNewTokens", 8)).post("/api/generate").then().statusCode(200)
                .body("completion", startsWith(", there was a little girl")).body("runId", nullValue());
        given().contentType(ContentType.JSON).body(Map.of("model", SharedModels.STORIES_TEXT,
                        "vector", Map.of("conceptPrompt", "The dog"), "prompt", "Once upon a time", "strength", 2,
                        "maxNewTokens", 8)).post("/api/steer").then().statusCode(200)
                .body("runId", nullValue()).body("steered.completion", not(nullValue()));
        given().get("/api/models").then().statusCode(200);
    }

    private static final io.restassured.config.RestAssuredConfig TWENTY_SECONDS = io.restassured.RestAssured.config()
            .httpClient(io.restassured.config.HttpClientConfig.httpClientConfig()
                    .setParam("http.socket.timeout", 20_000));

    /**
     * Runs a request; when it times out, prints every thread's stack (the app runs in this JVM) before failing, so a
     * hang once seen in CI (a job submission that never answered with the database down) shows where it waits.
     */
    private static void dumpThreadsIfItHangs(Runnable request) {
        try {
            request.run();
        } catch (Exception e) { // RestAssured throws SocketTimeoutException unchecked
            if (e instanceof java.net.SocketTimeoutException || e.getCause() instanceof java.net.SocketTimeoutException) {
                Thread.getAllStackTraces().forEach((t, stack) -> {
                    System.out.println("THREAD " + t.getName() + " " + t.getState());
                    for (StackTraceElement el : stack) {
                        System.out.println("    at " + el);
                    }
                });
            }
            throw e;
        }
    }

    @Test
    void aSingleComparisonIsStillAnsweredAndABatchOrTheListIs503() {
        java.util.List<String> models = TestModels.compareModels();
        given().contentType(ContentType.JSON).body(Map.of("models", models, "prompt", "t1 t2 t3"))
                .post("/api/compare").then().statusCode(200).body("id", nullValue()).body("status", equalTo("done"))
                .body("prompts[0].results.size()", equalTo(models.size()));
        given().contentType(ContentType.JSON).body(Map.of("models", models, "prompts", java.util.List.of("t1")))
                .post("/api/compare").then().statusCode(503).body("error", equalTo("database_unavailable"));
        for (String path : new String[] {"/api/compare", "/api/compare/1"}) {
            given().get(path).then().statusCode(503).body("error", equalTo("database_unavailable"));
        }
        given().get("/compare").then().statusCode(200).body(org.hamcrest.Matchers.containsString("unavailable"));
    }
}
