package lab.steering.web;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import jakarta.inject.Inject;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import javax.sql.DataSource;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import lab.steering.service.analysis.JacobianJobs;
import lab.steering.service.comparison.ComparisonJobs;
import lab.steering.service.jobs.JobKind;
import lab.steering.service.jobs.JobQueue;
import lab.steering.service.jobs.JobWorkers;
import lab.steering.service.jobs.WorkLimiter;
import lab.steering.store.JobStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The job queue with several worker pools ("replicas": {@link JobWorkers} with their own instance ids) on the test
 * database, next to the app's own pool. A replica is stopped mid-job with {@link JobWorkers#halt()}: no further
 * heartbeat or write, as if its process were killed. The test kind records every execution, so "never twice at
 * once" and "none lost" are checked on what actually ran, not on the table alone.
 */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class JobQueueTest {

    static final String KIND = "test-steps";

    @Inject
    JobQueue queue;
    @Inject
    DataSource dataSource;
    @Inject
    ObjectMapper json;
    @Inject
    JacobianJobs jacobianJobs;
    @Inject
    WorkLimiter limiter;
    @Inject
    ComparisonJobs comparisonJobs;

    /** What ran: per job, executions in progress now, the most at once, and the commits. */
    static final Map<UUID, AtomicInteger> ACTIVE = new ConcurrentHashMap<>();
    static final Map<UUID, AtomicInteger> MOST_AT_ONCE = new ConcurrentHashMap<>();
    static final Map<UUID, List<String>> COMMITS = new ConcurrentHashMap<>();
    static final Map<UUID, List<String>> STARTS = new ConcurrentHashMap<>();

    private final List<JobWorkers> started = new CopyOnWriteArrayList<>();

    /** {"steps": n, "stepMs": ms}: n progress points ms apart; the result names the instance and the attempt. */
    static final class Steps implements JobKind {
        final String instance;
        final ObjectMapper json;

        Steps(String instance, ObjectMapper json) {
            this.instance = instance;
            this.json = json;
        }

        @Override
        public String name() {
            return KIND;
        }

        @Override
        public Outcome run(JobStore.Job job, Progress progress) {
            JsonNode req;
            try {
                req = json.readTree(job.request());
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            int steps = req.get("steps").asInt();
            long ms = req.get("stepMs").asLong();
            STARTS.computeIfAbsent(job.id(), k -> new CopyOnWriteArrayList<>()).add(instance + "#" + job.attempts());
            int now = ACTIVE.computeIfAbsent(job.id(), k -> new AtomicInteger()).incrementAndGet();
            MOST_AT_ONCE.computeIfAbsent(job.id(), k -> new AtomicInteger()).accumulateAndGet(now, Math::max);
            try {
                for (int i = 0; i < steps; i++) {
                    progress.update("step " + i, (double) i / steps);
                    try {
                        Thread.sleep(ms);
                    } catch (InterruptedException e) {
                        throw new CancellationException("interrupted");
                    }
                }
            } finally {
                ACTIVE.get(job.id()).decrementAndGet();
            }
            String who = instance + "#" + job.attempts();
            return () -> {
                COMMITS.computeIfAbsent(job.id(), k -> new CopyOnWriteArrayList<>()).add(who);
                return Map.of("instance", instance, "attempt", job.attempts());
            };
        }
    }

    JobWorkers replica(String id, int workers, double leaseSeconds, Map<String, JobKind> kinds) {
        JobWorkers w = new JobWorkers(queue.store(), new JobWorkers.Settings(id, workers, leaseSeconds, 50, 50, 1000),
                kinds, JobWorkers.Executor.DIRECT, JobWorkers.Transactions.NONE, json).start();
        started.add(w);
        return w;
    }

    JobWorkers stepsReplica(String id, int workers, double leaseSeconds) {
        return replica(id, workers, leaseSeconds, Map.of(KIND, new Steps(id, json)));
    }

    UUID insert(int steps, long stepMs, int maxAttempts) {
        UUID id = UUID.randomUUID();
        assertTrue(queue.store().insert(id, KIND, null, "{\"steps\": " + steps + ", \"stepMs\": " + stepMs + "}",
                maxAttempts, 1_000_000));
        return id;
    }

    JobStore.Job awaitJob(UUID id, Predicate<JobStore.Job> p, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 60_000_000_000L;
        JobStore.Job last = null;
        while (System.nanoTime() < deadline) {
            last = queue.store().find(id, true).orElseThrow();
            if (p.test(last)) {
                return last;
            }
            Thread.sleep(10);
        }
        throw new AssertionError("job " + id + " never got " + what + "; last " + last);
    }

    @AfterEach
    void stopReplicas() {
        for (JobWorkers w : started) {
            w.halt();
        }
        started.clear();
        queue.drain(false);
    }

    @Test
    void twoPoolsRunEveryJobOnceAndLoseNoneWhenOneStopsMidJob() throws Exception {
        JobWorkers a = stepsReplica("replica-a", 2, 1.0);
        List<UUID> ids = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            ids.add(insert(8, 25, 3));
        }
        // wait until replica-a is inside a job (its progress is in the table), then start b and kill a
        JobStore.Job victim = null;
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (victim == null && System.nanoTime() < deadline) {
            for (UUID id : ids) {
                JobStore.Job j = queue.store().find(id, false).orElseThrow();
                if (j.status().equals("running") && "replica-a".equals(j.owner()) && j.progress() > 0) {
                    victim = j;
                    break;
                }
            }
            Thread.sleep(5);
        }
        assertTrue(victim != null, "replica-a never ran a job");
        stepsReplica("replica-b", 2, 1.0);
        a.halt();
        List<UUID> interrupted = new ArrayList<>();
        for (UUID id : ids) {
            if (STARTS.getOrDefault(id, List.of()).stream().anyMatch(s -> s.startsWith("replica-a"))
                    && COMMITS.getOrDefault(id, List.of()).isEmpty()) {
                interrupted.add(id);
            }
        }
        assertTrue(interrupted.contains(victim.id()));
        for (UUID id : ids) {
            JobStore.Job j = awaitJob(id, JobStore.Job::finished, "finished");
            assertEquals("done", j.status(), "job " + id + ": " + j);
            assertEquals(1, MOST_AT_ONCE.get(id).get(), "job " + id + " ran twice at once");
            assertEquals(1, COMMITS.get(id).size(), "job " + id + " committed " + COMMITS.get(id));
            JsonNode result = json.readTree(j.result());
            assertEquals(j.owner(), result.get("instance").asText());
            assertEquals(j.attempts(), result.get("attempt").asInt());
            // it ended on the instance that committed it; any earlier start was on replica-a, which died
            List<String> starts = STARTS.get(id);
            assertEquals(j.owner() + "#" + j.attempts(), starts.get(starts.size() - 1));
            assertTrue(starts.subList(0, starts.size() - 1).stream().allMatch(x -> x.startsWith("replica-a#")),
                    "job " + id + " started " + starts);
            if (interrupted.contains(id)) {
                // replica-a died during its attempt: the reaper requeued the job and replica-b ran it again
                assertEquals("replica-b", j.owner());
                assertEquals(2, j.attempts(), "job " + id + " started " + starts);
                assertEquals(List.of("replica-a#1", "replica-b#2"), starts);
            }
        }
    }

    @Test
    void aRequestWaitsForItsJobNoLongerThanItsPatienceAndTheJobIsCancelled() {
        UUID id = insert(1, 10, 1); // no replica here runs this kind: it stays queued
        long t0 = System.nanoTime();
        lab.steering.service.Refusal r = org.junit.jupiter.api.Assertions.assertThrows(
                lab.steering.service.Refusal.class, () -> queue.await(id, "the test job", java.time.Duration.ofMillis(300)));
        double waited = (System.nanoTime() - t0) / 1e9;
        assertEquals(lab.steering.service.Refusal.Kind.TIMEOUT, r.kind());
        assertEquals("timeout", r.code());
        assertTrue(r.getMessage().contains(id.toString()) && r.getMessage().contains("lab.jobs.wait-seconds"),
                r.getMessage());
        assertTrue(waited < 5, "waited " + waited + " s");
        assertEquals("cancelled", queue.store().find(id, false).orElseThrow().status());
    }

    @Test
    void aJobWhoseWorkersKeepDyingFailsWithAClearMessage() throws Exception {
        UUID id = insert(1000, 20, 2);
        JobWorkers a = stepsReplica("replica-c", 1, 0.6);
        awaitJob(id, j -> "replica-c".equals(j.owner()) && j.status().equals("running")
                && STARTS.getOrDefault(id, List.of()).contains("replica-c#1"), "running on replica-c");
        a.halt();
        JobWorkers b = stepsReplica("replica-d", 1, 0.6);
        JobStore.Job second = awaitJob(id, j -> "replica-d".equals(j.owner()) && j.status().equals("running")
                && STARTS.get(id).contains("replica-d#2"), "running on replica-d");
        assertEquals(2, second.attempts());
        b.halt();
        stepsReplica("replica-e", 1, 0.6); // its reaper finds the expired lease of the last attempt
        JobStore.Job failed = awaitJob(id, JobStore.Job::finished, "finished");
        assertEquals("failed", failed.status());
        assertEquals("worker replica-d stopped; gave up after 2 attempts", failed.error());
        assertEquals("worker_lost", failed.errorCode());
        assertEquals(List.of("replica-c#1", "replica-d#2"), STARTS.get(id));
        assertNull(COMMITS.get(id));
    }

    @Test
    void progressAndCancellationCrossInstances() throws Exception {
        UUID id = insert(1000, 10, 3);
        stepsReplica("replica-f", 1, 5);
        // the app's own instance (another id) reads the progress that replica-f writes
        JobStore.Job seen = awaitJob(id, j -> j.progress() >= 0.01, "progress");
        assertEquals("running", seen.status());
        assertEquals("replica-f", seen.owner());
        assertTrue(seen.stage().startsWith("step "));
        Optional<JobStore.Job> c = queue.cancel(id.toString()); // cancelled through the app's instance
        assertTrue(c.orElseThrow().cancelRequested());
        JobStore.Job done = awaitJob(id, JobStore.Job::finished, "finished");
        assertEquals("cancelled", done.status());
        assertTrue(done.progress() < 1);
        assertNull(done.result());
        assertNull(COMMITS.get(id));
        // a queued job is cancelled at once and never runs
        UUID queued = UUID.randomUUID();
        assertTrue(queue.store().insert(queued, "kind-nobody-runs", null, "{}", 3, 1_000_000));
        assertEquals("cancelled", queue.cancel(queued.toString()).orElseThrow().status());
    }

    /** A kind whose result cannot be written on its first {@code failing} attempts: the database connection is lost. */
    static JobKind losingTheDatabase(int failing) {
        return new JobKind() {
            @Override
            public String name() {
                return "kind-outage";
            }

            @Override
            public Outcome run(JobStore.Job job, Progress progress) {
                STARTS.computeIfAbsent(job.id(), k -> new CopyOnWriteArrayList<>()).add("attempt " + job.attempts());
                return () -> {
                    if (job.attempts() <= failing) {
                        throw new IllegalStateException("commit failed", new java.sql.SQLTransientConnectionException(
                                "An I/O error occurred while sending to the backend", "08006"));
                    }
                    return Map.of("attempt", job.attempts());
                };
            }
        };
    }

    /** A database outage is not the job's fault: the attempt goes back to the queue instead of failing the job. */
    @Test
    void aJobThatLosesTheDatabaseIsRetriedNotFailed() throws Exception {
        UUID id = UUID.randomUUID();
        assertTrue(queue.store().insert(id, "kind-outage", null, "{}", 3, 1_000_000));
        replica("replica-o", 1, 30, Map.of("kind-outage", losingTheDatabase(1)));
        JobStore.Job done = awaitJob(id, JobStore.Job::finished, "finished");
        assertEquals("done", done.status(), done.error());
        assertEquals(2, done.attempts());
        assertTrue(done.result().contains("\"attempt\":2"), done.result());
        assertEquals(List.of("attempt 1", "attempt 2"), STARTS.get(id));
    }

    /** ... but only as long as attempts remain: then it fails, saying why. */
    @Test
    void aJobThatKeepsLosingTheDatabaseFailsAfterItsAttempts() throws Exception {
        UUID id = UUID.randomUUID();
        assertTrue(queue.store().insert(id, "kind-outage", null, "{}", 2, 1_000_000));
        replica("replica-p", 1, 30, Map.of("kind-outage", losingTheDatabase(Integer.MAX_VALUE)));
        JobStore.Job failed = awaitJob(id, JobStore.Job::finished, "finished");
        assertEquals("failed", failed.status());
        assertEquals("database_unavailable", failed.errorCode());
        assertEquals("gave up after 2 attempts: the database was unavailable during attempt 2", failed.error());
        assertEquals(List.of("attempt 1", "attempt 2"), STARTS.get(id));
    }

    /** A fenced write: once a job was reaped and claimed again, its former worker can write nothing. */
    @Test
    void aWorkerThatLostItsLeaseCannotWrite() throws Exception {
        JobStore store = queue.store();
        UUID id = UUID.randomUUID();
        assertTrue(store.insert(id, "kind-fenced", null, "{}", 3, 1_000_000));
        JobStore.Job first = store.claim("replica-g", Set.of("kind-fenced"), 60).orElseThrow();
        assertEquals(id, first.id());
        assertTrue(store.claim("replica-h", Set.of("kind-fenced"), 60).isEmpty(), "claimed twice");
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("UPDATE job SET lease_until = now() - interval '1 s' WHERE id = ?")) {
            ps.setObject(1, id);
            assertEquals(1, ps.executeUpdate());
        }
        assertTrue(store.reap().stream().anyMatch(r -> r.id().equals(id) && r.status().equals("queued")));
        JobStore.Job second = store.claim("replica-h", Set.of("kind-fenced"), 60).orElseThrow();
        assertEquals(2, second.attempts());
        assertTrue(store.heartbeat(id, "replica-g", 1, 60, 0.5, "late").isEmpty());
        assertFalse(store.done(id, "replica-g", 1, "{\"from\": \"replica-g\"}"));
        assertTrue(store.done(id, "replica-h", 2, "{\"from\": \"replica-h\"}"));
        JobStore.Job done = store.find(id, true).orElseThrow();
        assertEquals("done", done.status());
        assertTrue(done.result().contains("replica-h"));
    }

    /**
     * The result commits in one transaction with the job's "done", fenced by owner and attempt: when the job was
     * taken over before the end, the commit's side effect (here: a row written by the outcome) is rolled back.
     */
    @Test
    void aTakenOverJobCommitsNothing() throws Exception {
        UUID id = UUID.randomUUID();
        UUID marker = UUID.randomUUID();
        java.util.concurrent.CountDownLatch attempted = new java.util.concurrent.CountDownLatch(1);
        JobKind thief = new JobKind() {
            @Override
            public String name() {
                return "kind-taken-over";
            }

            @Override
            public Outcome run(JobStore.Job job, Progress progress) {
                try (Connection c = dataSource.getConnection(); PreparedStatement ps = c.prepareStatement(
                        "UPDATE job SET owner = 'replica-thief', attempts = attempts + 1 WHERE id = ?")) {
                    ps.setObject(1, job.id());
                    ps.executeUpdate();
                } catch (java.sql.SQLException e) {
                    throw new IllegalStateException(e);
                }
                return () -> {
                    queue.store().insert(marker, "kind-marker", null, "{}", 1, 1_000_000);
                    attempted.countDown(); // inside the commit's transaction: the fenced "done" comes next
                    return Map.of();
                };
            }
        };
        JobWorkers w = new JobWorkers(queue.store(), new JobWorkers.Settings("replica-k", 1, 5, 50, 50, 1000),
                Map.of(thief.name(), thief), JobWorkers.Executor.DIRECT, JobQueue.jta(), json).start();
        started.add(w);
        assertTrue(queue.store().insert(id, thief.name(), null, "{}", 3, 1_000_000));
        JobStore.Job j = awaitJob(id, x -> "replica-thief".equals(x.owner()), "taken over");
        // the worker did attempt the commit (the outcome's write ran in its transaction) ...
        assertTrue(attempted.await(30, java.util.concurrent.TimeUnit.SECONDS), "the worker never tried to commit");
        // ... and that attempt is over (the job left the worker's running set when execute() returned), before halt()
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (w.runningJobs().contains(id)) {
            assertTrue(System.nanoTime() < deadline, "the commit attempt did not end");
            Thread.sleep(1);
        }
        w.halt();
        j = queue.store().find(id, true).orElseThrow();
        assertEquals("running", j.status());
        assertNull(j.result());
        assertTrue(queue.store().find(marker, false).isEmpty(), "the outcome's write was committed");
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("DELETE FROM job WHERE id = ?")) {
            ps.setObject(1, id);
            ps.executeUpdate();
        }
    }

    /** An analysis run by another replica: the app's API shows its worker, progress and result. */
    @Test
    void aJacobianJobRunOnAnotherReplicaIsVisibleThroughTheApi() throws Exception {
        SharedModels.require(SharedModels.STORIES_TEXT);
        queue.drain(true); // the app's own pool takes nothing: replica-j must run it
        Thread.sleep(100);
        replica("replica-j", 1, 5, Map.of(JacobianJobs.KIND, jacobianJobs));
        String id;
        try (AutoCloseable hold = limiter.hold()) { // the analysis stops at its first progress point
            id = given().contentType(ContentType.JSON).body(Map.of("model", SharedModels.STORIES_TEXT,
                    "prompt", "Once upon a time", "layers", "none")).post("/api/jacobian/jobs").then()
                    .statusCode(202).extract().path("id");
            JsonPath running = JacobianApiTest.awaitStatus(id, "running");
            assertEquals("replica-j", running.getString("worker"));
            assertEquals(1, running.getInt("attempts"));
        }
        JsonPath done = JacobianApiTest.awaitStatus(id, "done");
        assertEquals("replica-j", done.getString("worker"));
        assertEquals(1.0, done.getDouble("progress"));
        assertTrue(done.getDouble("result.reconstruction.detachedRelError") <= 1e-5);
        given().get("/analyze/jobs/" + id).then().statusCode(200).body(containsString("value=\"Once upon a time\""));
    }

    /** A job whose model this instance does not have fails with a message naming the model and the instance. */
    @Test
    void aJobForAModelNotLoadedHereFailsWithAClearMessage() throws Exception {
        UUID id = UUID.randomUUID();
        assertTrue(queue.store().insert(id, JacobianJobs.KIND, "no-such-model", json.writeValueAsString(
                new JacobianJobs.Payload("hi", new long[] {1, 2}, "full", "float32", 8, new int[0], "CUMULATIVE",
                        "LAYER", false)), 3, 1_000_000));
        JsonPath failed = JacobianApiTest.awaitStatus(id.toString(), "failed");
        assertEquals("model 'no-such-model' is not available on instance " + queue.instanceId() + " (models: "
                , failed.getString("error").substring(0, failed.getString("error").indexOf('[')));
        given().get("/api/jacobian/jobs/" + id).then().statusCode(200)
                .body("error", containsString("the jacobian job cannot run here")).body("model", equalTo("no-such-model"));
    }

    /** (prompt index, model) -> [entry row id, result JSON] of a comparison, and how many rows each pair has. */
    Map<String, List<String>> entries(long comparison, Map<String, Integer> rowsPerPair) throws Exception {
        Map<String, List<String>> out = new HashMap<>();
        try (Connection c = dataSource.getConnection(); PreparedStatement ps = c.prepareStatement(
                "SELECT prompt_index || '/' || model_id, id, result::text FROM comparison_entry WHERE comparison_id = ?")) {
            ps.setLong(1, comparison);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.put(rs.getString(1), List.of(rs.getString(2), rs.getString(3)));
                    rowsPerPair.merge(rs.getString(1), 1, Integer::sum);
                }
            }
        }
        return out;
    }

    /**
     * A comparison batch whose worker pool is stopped mid-job (killed: no further write) is requeued by the reaper
     * and finished by a second pool with exactly one entry per (model, prompt): the entries the first pool stored
     * are kept as they were (skipped, not recomputed), the rest are computed by the second pool's attempt, and the
     * API, read through the app's own instance, shows the job's state.
     */
    @Test
    void aComparisonTakenOverFromAStoppedPoolHasOneEntryPerModelAndPrompt() throws Exception {
        queue.drain(true); // the app's own pool takes nothing: replicas m and n must run it
        Thread.sleep(100);
        List<String> models = TestModels.compareModels();
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            prompts.add("t" + (i % 9 + 1) + " t" + (i % 7 + 2) + " t" + (i % 5 + 3));
        }
        int total = models.size() * prompts.size();
        JobWorkers m = replica("replica-m", 1, 1.0, Map.of(ComparisonJobs.KIND, comparisonJobs));
        JsonPath posted = given().contentType(ContentType.JSON).body(Map.of("models", models, "prompts", prompts))
                .post("/api/compare").then().statusCode(202).extract().jsonPath();
        long id = posted.getLong("id");
        UUID job;
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT job_id FROM comparison WHERE id = ?")) {
            ps.setLong(1, id);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                job = rs.getObject(1, UUID.class);
            }
        }
        awaitJob(job, j -> "replica-m".equals(j.owner()) && j.status().equals("running"), "running on replica-m");
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (entries(id, new HashMap<>()).size() < 3) {
            assertTrue(System.nanoTime() < deadline, "replica-m stored no entries");
            Thread.sleep(5);
        }
        assertEquals("running", given().get("/api/compare/" + id).jsonPath().getString("status"));
        m.halt(); // returns once its worker thread has stopped: nothing more is written by replica-m
        Map<String, List<String>> before = entries(id, new HashMap<>());
        assertTrue(before.size() < total, "replica-m finished before it was stopped: use more prompts");
        JobStore.Job orphan = queue.store().find(job, false).orElseThrow();
        assertEquals("running", orphan.status(), "the job of a killed worker stays running until its lease runs out");
        replica("replica-n", 1, 1.0, Map.of(ComparisonJobs.KIND, comparisonJobs)); // its reaper requeues it
        JsonPath done = CompareApiTest.waitFor(id, "done", null);
        assertEquals(1.0, done.getDouble("progress"));
        assertEquals(total, done.getInt("entries"));
        JobStore.Job j = queue.store().find(job, true).orElseThrow();
        assertEquals("done", j.status());
        assertEquals("replica-n", j.owner());
        assertEquals(2, j.attempts());
        JsonNode result = json.readTree(j.result());
        assertEquals(before.size(), result.get("skipped").asInt(), "the second attempt skips the stored entries");
        Map<String, Integer> rows = new HashMap<>();
        Map<String, List<String>> after = entries(id, rows);
        assertEquals(total, after.size());
        assertEquals(total, rows.values().stream().mapToInt(Integer::intValue).sum(), "a pair stored twice: " + rows);
        for (int p = 0; p < prompts.size(); p++) {
            for (String model : models) {
                assertEquals(1, rows.get(p + "/" + model), "prompt " + p + " on " + model);
            }
        }
        for (Map.Entry<String, List<String>> e : before.entrySet()) {
            assertEquals(e.getValue(), after.get(e.getKey()), "entry " + e.getKey() + " was recomputed");
        }
    }
}
