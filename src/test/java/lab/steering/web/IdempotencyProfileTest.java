package lab.steering.web;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Idempotent job submissions (issue 18): the Idempotency-Key header, the job id on every answer, GET /api/jobs/{id},
 * and a build that survives PostgreSQL stopping under it: retried with the same key, it yields one operator.
 * A short lease (3 s) so that a job whose worker lost the database is requeued quickly.
 */
@QuarkusTest
@TestProfile(IdempotencyProfileTest.ShortLease.class)
@QuarkusTestResource(TestModels.class)
class IdempotencyProfileTest {

    public static class ShortLease implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("lab.jobs.lease-seconds", "3", "quarkus.datasource.jdbc.acquisition-timeout", "2s");
        }
    }

    @Inject
    DataSource ds;
    @ConfigProperty(name = "quarkus.datasource.jdbc.url")
    String dbUrl;

    private static Map<String, Object> build(String name, String concept) {
        return Map.of("name", name, "model", SharedModels.STORIES_TEXT, "conceptPrompt", concept, "layer", 3);
    }

    private static Response post(String path, String key, Object body) {
        return given().contentType(ContentType.JSON).header("Idempotency-Key", key).body(body).post(path);
    }

    private static int operatorsNamed(String name) {
        List<String> names = given().queryParam("q", name).queryParam("limit", 500).get("/api/operators").then()
                .statusCode(200).extract().jsonPath().getList("name", String.class);
        return (int) names.stream().filter(name::equals).count();
    }

    @Test
    void aRetriedBuildWithTheSameKeyGetsTheFirstOperator() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        String name = "idem-" + UUID.randomUUID();
        String key = UUID.randomUUID().toString();
        Response first = post("/api/operators", key, build(name, "The dog barked at the cat"));
        first.then().statusCode(201);
        Response again = post("/api/operators", key, build(name, "The dog barked at the cat"));
        again.then().statusCode(201);
        assertEquals(first.jsonPath().getLong("id"), again.jsonPath().getLong("id"));
        String job = first.header("Job-Id");
        assertNotNull(job, "the 201 names its job");
        assertEquals(job, again.header("Job-Id"));
        assertEquals(1, operatorsNamed(name));

        given().get("/api/jobs/" + job).then().statusCode(200).body("kind", equalTo("operator-build"))
                .body("status", equalTo("done")).body("result.operatorId", equalTo(first.jsonPath().getInt("id")));
        given().get("/api/jobs/" + UUID.randomUUID()).then().statusCode(404).body("error", equalTo("unknown_job"));

        // the same key with another request: refused, naming the first job; nothing is built
        post("/api/operators", key, build(name, "The cat sat on the mat")).then().statusCode(422)
                .body("error", equalTo("idempotency_key_reused")).body("jobId", equalTo(job))
                .header("Job-Id", job);
        assertEquals(1, operatorsNamed(name));
        // a key that is no key
        post("/api/operators", "x".repeat(256), build(name, "The dog")).then().statusCode(400)
                .body("error", equalTo("invalid_idempotency_key"));
        post("/api/operators", "a\tb", build(name, "The dog")).then().statusCode(400)
                .body("error", equalTo("invalid_idempotency_key"));
        // without a key every POST is a new build
        given().contentType(ContentType.JSON).body(build(name, "The dog barked at the cat")).post("/api/operators")
                .then().statusCode(201);
        assertEquals(2, operatorsNamed(name));
    }

    @Test
    void jobsAnswerWithTheirIdAndAKeyGivesTheSameJob() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        String key = UUID.randomUUID().toString();
        Map<String, Object> req = Map.of("model", SharedModels.STORIES_TEXT, "prompt", "Once upon a time",
                "layers", "none");
        Response a = post("/api/jacobian/jobs", key, req);
        a.then().statusCode(202);
        String id = a.jsonPath().getString("id");
        assertEquals(id, a.header("Job-Id"));
        Response b = post("/api/jacobian/jobs", key, req);
        b.then().statusCode(202);
        assertEquals(id, b.jsonPath().getString("id"));
        given().get("/api/jobs/" + id).then().statusCode(200).body("kind", equalTo("jacobian"));
    }

    @Test
    void aBuildThatLosesTheDatabaseIsRetriedIntoOneOperator() throws Exception {
        SharedModels.require(SharedModels.STORIES_TEXT);
        String[] cluster = localCluster();
        String name = "outage-" + UUID.randomUUID();
        String key = UUID.randomUUID().toString();
        // a long concept prompt on the project's default model: the build runs for a few seconds
        StringBuilder concept = new StringBuilder("The old bridge over the river");
        while (concept.length() < 220) {
            concept.append(", and the old bridge over the river");
        }
        Map<String, Object> body = Map.of("name", name, "model", "steering-lab-base", "conceptPrompt",
                concept.toString(), "layer", 4);
        CompletableFuture<Response> first = CompletableFuture.supplyAsync(() -> post("/api/operators", key, body));
        waitForJob(key);
        pg(cluster, "stop", "-m", "fast");
        Response answer;
        try {
            answer = first.get(120, TimeUnit.SECONDS);
        } finally {
            Thread.sleep(1000);
            pg(cluster, "start");
        }
        // while the database was away the build either finished (201) or the wait broke off with 503, naming the job
        assertTrue(answer.statusCode() == 201 || answer.statusCode() == 503, "first answer " + answer.statusCode()
                + ": " + answer.asString());
        String job = answer.header("Job-Id");
        assertNotNull(job, "the first answer names its job: " + answer.asString());
        if (answer.statusCode() == 503) {
            answer.then().body("error", equalTo("database_unavailable")).body("jobId", equalTo(job))
                    .body("message", containsString(job));
        }
        // the client retries with the same key until the database is back: the same job, one operator
        Response retried = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (System.nanoTime() < deadline) {
            retried = post("/api/operators", key, body);
            if (retried.statusCode() != 503) {
                break;
            }
            Thread.sleep(500);
        }
        assertNotNull(retried);
        assertEquals(201, retried.statusCode(), retried.asString());
        assertEquals(job, retried.header("Job-Id"));
        if (answer.statusCode() == 201) {
            assertEquals(answer.jsonPath().getLong("id"), retried.jsonPath().getLong("id"));
        }
        assertEquals(1, operatorsNamed(name));
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(
                "SELECT count(*) FROM steering_operator WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertEquals(1, rs.getInt(1), "operators stored under " + name);
            }
        }
    }

    /** The Debian cluster (version, name) that serves the test database, or the test is skipped. */
    private String[] localCluster() throws IOException, InterruptedException {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("//(localhost|127\\.0\\.0\\.1):(\\d+)/")
                .matcher(dbUrl);
        Assumptions.assumeTrue(m.find(), "skipped: the test database is not on this machine (" + dbUrl + ")");
        String port = m.group(2);
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")),
                "skipped: stopping PostgreSQL needs root (pg_ctlcluster)");
        Process p;
        try {
            p = new ProcessBuilder("pg_lsclusters", "--no-header").redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("skipped: pg_lsclusters is not installed (" + e.getMessage() + ")");
            return null;
        }
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor();
        for (String line : out.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 3 && f[2].equals(port)) {
                return new String[] {f[0], f[1]};
            }
        }
        Assumptions.abort("skipped: no cluster on port " + port + " in pg_lsclusters: " + out);
        return null;
    }

    private static void pg(String[] cluster, String... action) throws IOException, InterruptedException {
        String[] cmd = new String[3 + action.length];
        cmd[0] = "pg_ctlcluster";
        cmd[1] = cluster[0];
        cmd[2] = cluster[1];
        System.arraycopy(action, 0, cmd, 3, action.length);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
    }

    /** Waits until the build's job is in the table (queued or running). */
    private void waitForJob(String key) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(
                    "SELECT status FROM job WHERE idempotency_key = ?")) {
                ps.setString(1, key);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next() && rs.getString(1).equals("running")) {
                        return;
                    }
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("the build's job did not start within 60 s");
    }
}
