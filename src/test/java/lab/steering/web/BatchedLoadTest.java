package lab.steering.web;

import static io.restassured.RestAssured.given;
import static lab.steering.web.RequestBodies.body;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import lab.steering.generate.GeneratedToken;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import lab.steering.service.models.ModelRegistry;
import lab.steering.steer.Injector;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.SteeringOperator;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Issue 15's load test, bounded and on the loopback: 32 clients for {@code loadtest.seconds} (default 15; the issue's
 * figure is 60: {@code ./mvnw test -Dtest=BatchedLoadTest -Dloadtest.seconds=60}) send greedy generate, steer and sweep
 * requests at once. Every answer is 200 or 429 (with Retry-After), and every 200 carries exactly the tokens of the
 * same request decoded alone (the unbatched reference, {@link SteeredRun#run} in this JVM, on the app's own model
 * and operator).
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
@Tag("slow")
class BatchedLoadTest {

    static final String MODEL = SharedModels.STORIES_TEXT;
    static final String[] PROMPTS = {"Once upon a time", "Lily and her mom went to the park. They saw",
        "One day, a little boy named Tim", "The sun was hot. The cat", "She had a red ball and"};
    static final double[] STRENGTHS = {0.5, 1, 2};
    static final int TOKENS = 16;

    @Inject
    ModelRegistry registry;
    @Inject
    lab.steering.service.steering.OperatorService steering;

    @Test
    void thirtyTwoClientsGetOnly200Or429AndTheirUnbatchedTokens() throws Exception {
        SharedModels.require(MODEL);
        long op = given().contentType(ContentType.JSON).body(body("name", "load", "model", MODEL, "conceptPrompt",
                "The dog barked at the cat in the garden")).post("/api/operators").then().statusCode(201)
                .extract().jsonPath().getLong("id");
        LanguageModel model = registry.find(MODEL).orElseThrow();
        SteeringOperator operator = steering.load(op).operator();
        GenerationParams greedy = GenerationParams.greedy(TOKENS);

        // the unbatched answers
        Map<String, List<Long>> plain = new TreeMap<>();
        Map<String, List<Long>> steered = new TreeMap<>();
        for (String p : PROMPTS) {
            long[] ids = model.tokenizer().encode(p);
            plain.put(p, ids(SteeredRun.run(model, ids, greedy, null, operator.conceptIds(), 0)));
            for (double s : STRENGTHS) {
                steered.put(p + "|" + s, ids(SteeredRun.run(model, ids, greedy,
                        m -> new Injector(operator, s, m, model.dataType()), operator.conceptIds(), 0)));
            }
        }

        int clients = 32;
        long seconds = Long.getLong("loadtest.seconds", 15);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        Map<String, AtomicInteger> counts = new ConcurrentHashMap<>();
        List<String> problems = java.util.Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<Future<?>> all = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            int client = c;
            all.add(pool.submit(() -> {
                int i = 0;
                while (System.nanoTime() < end && problems.size() < 10) {
                    String prompt = PROMPTS[(client + i) % PROMPTS.length];
                    double s = STRENGTHS[(client + i) % STRENGTHS.length];
                    int kind = (client + i++) % 8; // mostly generate and steer; a sweep now and then
                    String what = kind < 4 ? "generate" : kind < 7 ? "steer" : "sweep";
                    Response r = switch (what) {
                        case "generate" -> given().contentType(ContentType.JSON).body(body("model", MODEL,
                                "prompt", prompt, "maxNewTokens", TOKENS, "temperature", 0)).post("/api/generate");
                        case "steer" -> given().contentType(ContentType.JSON).body(body("operatorId", op,
                                "prompt", prompt, "strength", s, "maxNewTokens", TOKENS, "temperature", 0))
                                .post("/api/steer");
                        default -> given().contentType(ContentType.JSON).body(body("operatorId", op,
                                "prompt", prompt, "strengths", List.of(STRENGTHS[0], STRENGTHS[1], STRENGTHS[2]), "maxNewTokens", TOKENS,
                                "temperature", 0)).post("/api/steer/sweep");
                    };
                    int status = r.statusCode();
                    counts.computeIfAbsent(what + " " + status, k -> new AtomicInteger()).incrementAndGet();
                    if (status == 429) {
                        if (r.header("Retry-After") == null) {
                            problems.add(what + ": 429 without Retry-After");
                        }
                        continue;
                    }
                    if (status != 200) {
                        problems.add(what + ": " + status + " " + r.asString());
                        continue;
                    }
                    JsonPath j = r.jsonPath();
                    Object want;
                    Object got;
                    switch (what) {
                        case "generate" -> {
                            want = plain.get(prompt);
                            got = longs(j.getList("tokens.id"));
                        }
                        case "steer" -> {
                            if (!plain.get(prompt).equals(longs(j.getList("normal.tokens.id")))) {
                                problems.add("steer: normal tokens differ for '" + prompt + "'");
                            }
                            want = steered.get(prompt + "|" + s);
                            got = longs(j.getList("steered.tokens.id"));
                        }
                        default -> { // a sweep's cells carry text: the baseline's and each strength's
                            List<String> texts = new ArrayList<>();
                            texts.add(text(model, plain.get(prompt)));
                            for (double x : STRENGTHS) {
                                texts.add(text(model, steered.get(prompt + "|" + x)));
                            }
                            want = texts;
                            List<String> cells = new ArrayList<>();
                            cells.add(j.getString("baseline.completion"));
                            cells.addAll(j.getList("cells.completion", String.class));
                            got = cells;
                        }
                    }
                    if (!want.equals(got)) {
                        problems.add(what + ": tokens differ for '" + prompt + "' (strength " + s + "): " + got
                                + " vs " + want);
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : all) {
            f.get(seconds + 300, TimeUnit.SECONDS);
        }
        pool.shutdown();
        System.out.println("load test, " + clients + " clients for " + seconds + " s: " + new TreeMap<>(counts));
        assertEquals(List.of(), problems);
        int ok = counts.entrySet().stream().filter(e -> e.getKey().endsWith(" 200"))
                .mapToInt(e -> e.getValue().get()).sum();
        assertTrue(ok >= clients, "answers: " + counts);
    }

    static List<Long> ids(SteeredRun.Result r) {
        return r.generation().tokens().stream().map(GeneratedToken::id).toList();
    }

    static List<Long> longs(List<?> xs) {
        return xs.stream().map(x -> ((Number) x).longValue()).toList();
    }

    static String text(LanguageModel model, List<Long> ids) {
        return model.tokenizer().decodeText(ids.stream().mapToLong(Long::longValue).toArray());
    }
}
