package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.greaterThan;
import static org.hamcrest.Matchers.hasItems;
import static org.hamcrest.Matchers.notNullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import lab.steering.model.LanguageModel;
import lab.steering.service.jobs.WorkLimiter;
import lab.steering.service.models.ModelRegistry;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.Test;

/**
 * Models on demand under a small memory budget (20 MB): three tiny models of about 8.4 MB each (two fit, three do
 * not), one that needs about 23 MB (a 6 MB bfloat16 file held as float32), a checkpoint whose weights file is cut
 * short, and a folder without config.json. The app starts, the good models load on first use, the bad ones are
 * failed with their reasons, the least recently used idle model makes room, and a model in use is never unloaded.
 */
@QuarkusTest
@TestProfile(ModelMemoryProfileTest.SmallBudget.class)
@QuarkusTestResource(value = ModelMemoryProfileTest.Folders.class, restrictToAnnotatedClass = true)
class ModelMemoryProfileTest {

    static final Path DIR = Path.of("target", "test-models-memory");
    static final String PROMPT = "t1 t5 t9 t3";

    /**
     * Only this test's folder (no ../shared/models), a 20 MB budget, no start-up load, short waits, and weights held
     * as float32 (compact weights would hold mem-huge in 7.6 MB: CompactWeightsTest covers that estimate).
     */
    public static class SmallBudget implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("lab.project-models-dir", DIR.toString(),
                    "lab.models-dir", DIR.resolve("none").toString(),
                    "lab.default-model", "mem-a",
                    "lab.models.memory", "20M",
                    "lab.models.wait-seconds", "2",
                    "lab.models.preload", "false",
                    "lab.models.weights", "float32");
        }
    }

    /** Writes the models folder before the app starts. */
    public static class Folders implements QuarkusTestResourceLifecycleManager {
        @Override
        public Map<String, String> start() {
            try {
                write();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return Map.of();
        }

        @Override
        public void stop() {
        }
    }

    static TinyCheckpoint tiny(long seed) {
        return TinyCheckpoint.llama().hidden(64).layers(2).heads(4).kvHeads(2).intermediate(128).vocab(256).seed(seed);
    }

    static void write() throws IOException {
        lab.steering.TestModels.emptyFolder(DIR);
        for (String id : List.of("mem-a", "mem-b", "mem-c", "mem-first")) {
            tiny(id.hashCode()).writeTo(DIR.resolve(id));
        }
        // 3.15 M parameters: 6 MB on disk in bfloat16, 12.6 MB held as float32, about 23 MB with the margin
        TinyCheckpoint.llama().hidden(256).layers(2).heads(4).kvHeads(4).intermediate(1024).vocab(4096)
                .dtype("BF16").seed(5).writeTo(DIR.resolve("mem-huge"));
        Path broken = tiny(6).writeTo(DIR.resolve("mem-broken"));
        try (FileChannel ch = FileChannel.open(broken.resolve("model.safetensors"), StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() / 2);
        }
        Files.createDirectories(DIR.resolve("mem-empty"));
    }

    @Inject
    ModelRegistry registry;
    @Inject
    WorkLimiter limiter;

    static Response generate(String model) {
        return given().contentType(ContentType.JSON)
                .body(body("model", model, "prompt", PROMPT, "maxNewTokens", 4, "temperature", 0))
                .post("/api/generate");
    }

    static String state(String model) {
        return given().get("/api/models").then().statusCode(200).extract()
                .path("find { it.id == '" + model + "' }.state");
    }

    @Test
    void startsWithBrokenAndTooLargeFoldersAndServesTheOthers() {
        JsonPath models = given().get("/api/models").then().statusCode(200).extract().jsonPath();
        assertEquals("failed", models.getString("find { it.id == 'mem-huge' }.state"));
        assertTrue(models.getString("find { it.id == 'mem-huge' }.error").contains("more than the model memory budget"));
        assertTrue(models.getLong("find { it.id == 'mem-huge' }.memoryMb") > 20);
        given().get("/api/models/failures").then().statusCode(200)
                .body("id", hasItems("mem-huge", "mem-empty"))
                .body("find { it.id == 'mem-empty' }.error", containsString("config.json: missing"));

        // too large: refused before anything is read, with the need and the budget
        generate("mem-huge").then().statusCode(413).body("error", equalTo("model_too_large"))
                .body("model", equalTo("mem-huge")).body("budgetMb", equalTo(20))
                .body("needMb", greaterThan(20))
                .body("message", containsString("held as float32"));

        // the cut checkpoint scans (config.json and sizes) and fails when it loads, with the reason
        assertTrue(List.of("available", "failed").contains(state("mem-broken")));
        generate("mem-broken").then().statusCode(500).body("error", equalTo("model_failed"))
                .body("message", containsString("mem-broken")).body("message", containsString("model.safetensors"));
        assertEquals("failed", state("mem-broken"));
        given().get("/api/models/failures").then().body("id", hasItems("mem-huge", "mem-empty", "mem-broken"));
        generate("mem-broken").then().statusCode(500).body("error", equalTo("model_failed")); // not tried again

        // the others work
        generate("mem-a").then().statusCode(200).body("model", equalTo("mem-a"));
        given().get("/q/health/ready").then().statusCode(200);
        given().get("/models").then().statusCode(200)
                .body(containsString("data-model=\"mem-huge\" data-state=\"failed\""))
                .body(containsString("of 20 MB in use"));
    }

    /** A model folder copied in while the app runs is listed and used without a restart; one removed is forgotten. */
    @Test
    void foldersAddedOrRemovedWhileRunningAreSeen() throws IOException {
        Path late = DIR.resolve("mem-late");
        Path gone = DIR.resolve("mem-gone");
        try {
            given().get("/api/models").then().statusCode(200); // listed before the folders exist
            generate("mem-late").then().statusCode(404).body("error", equalTo("unknown_model"));
            tiny(7).writeTo(late);
            tiny(8).writeTo(gone);
            // named before any listing has seen it: the request itself looks again
            generate("mem-late").then().statusCode(200).body("model", equalTo("mem-late"));
            assertEquals("loaded", state("mem-late"));
            assertEquals("available", state("mem-gone"));

            lab.steering.TestModels.emptyFolder(gone);
            Files.delete(gone);
            assertNull(state("mem-gone"), "a folder removed is no longer listed");
            generate("mem-gone").then().statusCode(404).body("error", equalTo("unknown_model"));
            given().get("/models").then().statusCode(200).body(containsString("data-model=\"mem-late\""));
        } finally {
            lab.steering.TestModels.emptyFolder(gone);
            Files.delete(gone); // mem-late stays: it is loaded, as a model in use would be
        }
    }

    @Test
    void loadsAModelOnFirstUseOnceForConcurrentRequests() throws Exception {
        assertEquals("available", state("mem-first"));
        int n = 6;
        CyclicBarrier start = new CyclicBarrier(n);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<LanguageModel>> found = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                found.add(pool.submit(() -> {
                    start.await();
                    return registry.find("mem-first").orElseThrow();
                }));
            }
            LanguageModel first = found.get(0).get();
            for (Future<LanguageModel> f : found) {
                assertSame(first, f.get(), "every concurrent first use gets the one model loaded");
            }
        } finally {
            pool.shutdown();
        }
        assertEquals("loaded", state("mem-first"));
        generate("mem-first").then().statusCode(200);
    }

    @Test
    void unloadsTheLeastRecentlyUsedIdleModelToMakeRoom() {
        List<Object> before = generate("mem-a").then().statusCode(200).extract().path("tokens.id");
        generate("mem-b").then().statusCode(200);
        assertEquals("loaded", state("mem-a"));
        assertEquals("loaded", state("mem-b"));
        assertTrue(hasDecoderThread("mem-a"), "mem-a decodes on its own thread");

        generate("mem-c").then().statusCode(200); // two fit: mem-a, the least recently used, goes
        assertEquals("available", state("mem-a"));
        assertEquals("loaded", state("mem-b"));
        assertEquals("loaded", state("mem-c"));
        assertFalse(hasDecoderThread("mem-a"), "its decoder thread stopped");
        assertTrue(registry.usedBytes() <= registry.budget().bytes());

        // loaded again on its next use (mem-b goes now), with the same greedy tokens
        assertEquals(before, generate("mem-a").then().statusCode(200).extract().path("tokens.id"));
        assertEquals("available", state("mem-b"));
        assertEquals("loaded", state("mem-c"));
    }

    @Test
    void neverUnloadsAModelInUse() throws Exception {
        generate("mem-a").then().statusCode(200);
        String job;
        try (AutoCloseable hold = limiter.hold()) {
            // the job holds mem-a while it runs (here: held at its first progress point)
            job = given().contentType(ContentType.JSON).body(body("model", "mem-a", "prompt", PROMPT,
                    "layers", "none")).post("/api/jacobian/jobs").then().statusCode(202).extract().path("id");
            JacobianApiTest.awaitStatus(job, "running");
            Thread.sleep(300); // from claimed to holding the model at its first progress point
            awaitInUse("mem-a");
            generate("mem-b").then().statusCode(200);
            generate("mem-c").then().statusCode(200); // mem-a is the least recently used, but in use: mem-b goes
            assertEquals("loaded", state("mem-a"));
            assertEquals("available", state("mem-b"));
            assertEquals("loaded", state("mem-c"));
        }
        JacobianApiTest.awaitStatus(job, "done");
    }

    @Test
    void refusesWhenTheMemoryStaysHeldOrOneRequestNeedsMoreThanTheBudget() {
        try (ModelRegistry.Scope scope = registry.openScope(List.of())) {
            registry.find("mem-a").orElseThrow();
            registry.find("mem-c").orElseThrow();
            // both in use: mem-b cannot load within lab.models.wait-seconds
            long t0 = System.nanoTime();
            generate("mem-b").then().statusCode(429).body("error", equalTo("busy"))
                    .header("Retry-After", notNullValue())
                    .body("message", containsString("held by models in use"));
            assertTrue(System.nanoTime() - t0 >= 1_500_000_000L, "it waited for the memory");
        }
        generate("mem-b").then().statusCode(200);

        // one comparison that needs three models at once: refused at once, naming what the request holds
        given().contentType(ContentType.JSON).body(body("models", List.of("mem-a", "mem-b", "mem-c"),
                        "prompt", PROMPT)).post("/api/compare").then().statusCode(413)
                .body("error", equalTo("model_too_large")).body("model", equalTo("mem-c"))
                .body("heldByRequestMb", greaterThan(15)).body("message", containsString("already holds"));
        generate("mem-c").then().statusCode(200);
    }

    /** A live thread of the model's batched decoder ({@code decoder-N-<model>}). */
    static boolean hasDecoderThread(String model) {
        return Thread.getAllStackTraces().keySet().stream()
                .anyMatch(t -> t.isAlive() && t.getName().matches("decoder-\\d+-" + model));
    }

    void awaitInUse(String model) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (System.nanoTime() < deadline) {
            Integer n = given().get("/api/models").then().extract().path("find { it.id == '" + model + "' }.inUse");
            if (n != null && n > 0) {
                return;
            }
            Thread.sleep(20);
        }
        throw new AssertionError(model + " never came into use");
    }
}
