package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.hamcrest.Matchers.empty;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.function.BooleanSupplier;
import javax.sql.DataSource;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import lab.steering.service.jobs.WorkLimiter;
import org.junit.jupiter.api.Test;

/**
 * A client that hangs up stops its synchronous heavy request: the analysis is taken off the limiter (interrupted at
 * its checkpoint), the operator build's job is cancelled and stores nothing. The work is held at its first
 * checkpoint ({@link WorkLimiter#hold()}), or queued behind held work, so that it is certainly unfinished when the
 * client goes.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class ClientGoneTest {

    static final String MODEL = SharedModels.STORIES_TEXT;

    @Inject
    WorkLimiter limiter;
    @Inject
    DataSource dataSource;
    @Inject
    ObjectMapper json;

    @Test
    void aClientThatHangsUpStopsItsAnalysisAndFreesTheSlot() throws Exception {
        SharedModels.require(MODEL);
        try (AutoCloseable hold = limiter.hold()) {
            Socket client = post("/api/jacobian", body("model", MODEL, "prompt", "Once upon a time", "layers", "none"));
            waitFor(() -> limiter.running() == 1, 60, "the analysis to start");
            client.close();
            // still held: only the cancellation can end the task now
            waitFor(() -> limiter.running() == 0, 20, "the abandoned analysis to stop");
        }
        given().contentType(ContentType.JSON).body(body("model", MODEL, "prompt", "Once upon a time", "layers",
                "none")).post("/api/jacobian").then().statusCode(200);
    }

    @Test
    void aClientThatHangsUpCancelsItsOperatorBuild() throws Exception {
        SharedModels.require(MODEL);
        String name = "abandoned build " + System.nanoTime();
        String[] build = new String[1];
        try (AutoCloseable hold = limiter.hold()) {
            // a held analysis job takes the one running slot, so the build waits in the queue
            String blocker = given().contentType(ContentType.JSON).body(body("model", MODEL, "prompt",
                    "Once upon a time", "layers", "none")).post("/api/jacobian/jobs").then().statusCode(202)
                    .extract().path("id");
            waitFor(() -> limiter.running() == 1, 60, "the blocking job to start");
            Socket client = post("/api/operators", body("name", name, "model", MODEL, "conceptPrompt",
                    "The dog ran to the park"));
            waitFor(() -> (build[0] = latestBuild()) != null && build[0].endsWith(" queued"), 60,
                    "the build job to be queued");
            client.close();
            String id = build[0].split(" ")[0];
            waitFor(() -> latestBuild().equals(id + " cancelled"), 20, "the abandoned build to be cancelled");
            given().delete("/api/jacobian/jobs/" + blocker).then().statusCode(202);
        }
        given().queryParam("q", name).get("/api/operators").then().statusCode(200).body("$", empty());
    }

    /** The newest operator-build job as "id status", or null. */
    private String latestBuild() {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT id, status FROM job WHERE kind = ?"
                     + " ORDER BY seq DESC LIMIT 1")) {
            ps.setString(1, lab.steering.service.steering.OperatorService.BUILD_KIND);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) + " " + rs.getString(2) : null;
            }
        } catch (java.sql.SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Sends a JSON POST on a raw connection and leaves it open, unread (a client that may hang up). */
    private Socket post(String path, Object body) throws IOException {
        byte[] bytes = json.writeValueAsBytes(body);
        Socket s = new Socket("localhost", RestAssured.port);
        OutputStream out = s.getOutputStream();
        out.write(("POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(bytes);
        out.flush();
        return s;
    }

    private static void waitFor(BooleanSupplier condition, int seconds, String what) throws InterruptedException {
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
            Thread.sleep(20);
        }
        assertEquals(true, condition.getAsBoolean());
    }
}
