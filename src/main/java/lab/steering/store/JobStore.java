package lab.steering.store;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import javax.sql.DataSource;

/**
 * The SQL of the job table (V3__jobs.sql), plain JDBC on one datasource. Every change to a running job is fenced by
 * its owner and attempt number ({@code owner = ? AND attempts = ? AND status = 'running'}): a worker whose lease was
 * taken over (its job reaped and claimed again) can no longer write anything. Times are the database's
 * ({@code clock_timestamp()}), so replicas with skewed clocks agree on leases.
 */
public final class JobStore {

    /** One row; {@code result} (JSON text) only when read with it. */
    public record Job(UUID id, String kind, String modelId, String request, String status, double progress,
                      String stage, int attempts, int maxAttempts, String owner, String result, String error,
                      Integer errorStatus, String errorCode, boolean cancelRequested, Instant createdAt,
                      Instant startedAt, Instant finishedAt, Instant leaseUntil) {

        public boolean finished() {
            return status.equals("done") || status.equals("failed") || status.equals("cancelled");
        }
    }

    /** A job's row changed under its worker: it was reaped (lease expired) and possibly claimed by another one. */
    public static final class LeaseLost extends RuntimeException {
        public LeaseLost(UUID id) {
            super("job " + id + ": the lease was lost (reaped and requeued or failed); its result is dropped");
        }
    }

    /** What a heartbeat learnt: whether cancellation was requested. */
    public record Beat(boolean cancelRequested) {
    }

    /** A job the reaper changed (requeued or failed). */
    public record Reaped(UUID id, String owner, String status, int attempts) {
    }

    private static final String COLUMNS = "id, kind, model_id, request::text, status, progress, stage, attempts, "
            + "max_attempts, owner, error, error_status, error_code, cancel_requested, created_at, started_at, "
            + "finished_at, lease_until";

    private final DataSource ds;

    public JobStore(DataSource ds) {
        this.ds = ds;
    }

    /**
     * Inserts a queued job unless {@code maxQueued} jobs are already queued (the check and the insert are one
     * statement; concurrent submissions can overshoot it by a few). Returns false when refused.
     */
    public boolean insert(UUID id, String kind, String modelId, String requestJson, int maxAttempts, int maxQueued) {
        return insert(id, kind, modelId, requestJson, maxAttempts, maxQueued, null, null) == Inserted.QUEUED;
    }

    /** What {@link #insert(UUID, String, String, String, int, int, String, String)} did. */
    public enum Inserted { QUEUED, QUEUE_FULL, KEY_TAKEN }

    /**
     * As above, with an idempotency key (null: none) and the request's hash: when a job of this kind already holds
     * the key, nothing is inserted ({@code KEY_TAKEN}; {@link #findByKey} then gives that job). The key's unique
     * index makes concurrent submissions with one key insert one job.
     */
    public Inserted insert(UUID id, String kind, String modelId, String requestJson, int maxAttempts, int maxQueued,
                           String idempotencyKey, String requestHash) {
        String sql = "INSERT INTO job (id, kind, model_id, request, max_attempts, idempotency_key, request_hash) "
                + "SELECT ?, ?, ?, ?::json, ?, ?, ? WHERE (SELECT count(*) FROM job WHERE status = 'queued') < ? "
                + "ON CONFLICT (kind, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING";
        int n = update(sql, ps -> {
            ps.setObject(1, id);
            ps.setString(2, kind);
            ps.setString(3, modelId);
            ps.setString(4, requestJson);
            ps.setInt(5, maxAttempts);
            ps.setString(6, idempotencyKey);
            ps.setString(7, requestHash);
            ps.setInt(8, maxQueued);
        }, "queue a " + kind + " job");
        if (n == 1) {
            return Inserted.QUEUED;
        }
        return idempotencyKey != null && findByKey(kind, idempotencyKey).isPresent() ? Inserted.KEY_TAKEN
                : Inserted.QUEUE_FULL;
    }

    /** A job that holds an idempotency key, and the hash of the request it was submitted with. */
    public record Keyed(Job job, String requestHash) {
    }

    /** The job of {@code kind} that holds {@code idempotencyKey}, if it is still kept. */
    public Optional<Keyed> findByKey(String kind, String idempotencyKey) {
        String sql = "SELECT " + COLUMNS + ", NULL, request_hash FROM job WHERE kind = ? AND idempotency_key = ?";
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, kind);
            ps.setString(2, idempotencyKey);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new Keyed(row(rs), rs.getString(20))) : Optional.empty();
            }
        } catch (SQLException e) {
            throw new IllegalStateException("cannot read the " + kind + " job of an idempotency key: "
                    + e.getMessage(), e);
        }
    }

    public int queued() {
        return count("SELECT count(*) FROM job WHERE status = 'queued'");
    }

    public int running() {
        return count("SELECT count(*) FROM job WHERE status = 'running'");
    }

    private int count(String sql) {
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(sql);
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getInt(1);
        } catch (SQLException e) {
            throw new IllegalStateException("cannot count jobs: " + e.getMessage(), e);
        }
    }

    /** The job, with its result when {@code withResult} (and it has one). */
    public Optional<Job> find(UUID id, boolean withResult) {
        String sql = "SELECT " + COLUMNS + (withResult ? ", result::text" : ", NULL") + " FROM job WHERE id = ?";
        return one(sql, ps -> ps.setObject(1, id), "read job " + id);
    }

    /**
     * Requests cancellation: a queued job is cancelled at once (it will never be claimed); a running one is marked,
     * and its worker stops at its next progress point or heartbeat; a finished one is left as it is.
     */
    public Optional<Job> cancel(UUID id) {
        String sql = "UPDATE job SET cancel_requested = cancel_requested OR status IN ('queued', 'running'), "
                + "status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END, "
                + "stage = CASE WHEN status = 'queued' THEN 'cancelled' ELSE stage END, "
                + "finished_at = CASE WHEN status = 'queued' THEN clock_timestamp() ELSE finished_at END "
                + "WHERE id = ? RETURNING " + COLUMNS + ", NULL";
        return one(sql, ps -> ps.setObject(1, id), "cancel job " + id);
    }

    /**
     * Claims the oldest queued job of one of {@code kinds} for {@code owner}: status running, attempts + 1, a lease
     * of {@code leaseSeconds}. SKIP LOCKED: concurrent claimers never wait for, nor get, the same row.
     */
    public Optional<Job> claim(String owner, Collection<String> kinds, double leaseSeconds) {
        String sql = "UPDATE job SET status = 'running', owner = ?, attempts = attempts + 1, progress = 0, "
                + "stage = 'starting', started_at = clock_timestamp(), heartbeat_at = clock_timestamp(), "
                + "lease_until = clock_timestamp() + make_interval(secs => ?) "
                + "WHERE id = (SELECT id FROM job WHERE status = 'queued' AND kind = ANY (?) "
                + "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING " + COLUMNS + ", NULL";
        return one(sql, ps -> {
            ps.setString(1, owner);
            ps.setDouble(2, leaseSeconds);
            ps.setArray(3, ps.getConnection().createArrayOf("text", kinds.toArray()));
        }, "claim a job");
    }

    /**
     * Renews the lease and writes the progress; empty when the job is no longer this worker's (reaped, or
     * finished by someone else).
     */
    public Optional<Beat> heartbeat(UUID id, String owner, int attempt, double leaseSeconds, double progress,
                                    String stage) {
        String sql = "UPDATE job SET heartbeat_at = clock_timestamp(), "
                + "lease_until = clock_timestamp() + make_interval(secs => ?), progress = ?, stage = ? "
                + "WHERE id = ? AND owner = ? AND attempts = ? AND status = 'running' RETURNING cancel_requested";
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setDouble(1, leaseSeconds);
            ps.setDouble(2, Math.max(0, Math.min(1, progress)));
            ps.setString(3, stage);
            ps.setObject(4, id);
            ps.setString(5, owner);
            ps.setInt(6, attempt);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new Beat(rs.getBoolean(1))) : Optional.empty();
            }
        } catch (SQLException e) {
            throw new IllegalStateException("cannot renew the lease of job " + id + ": " + e.getMessage(), e);
        }
    }

    /** Marks the job done with its result; false when the lease was lost (nothing written). */
    public boolean done(UUID id, String owner, int attempt, String resultJson) {
        return finish(id, owner, attempt, "done", resultJson, null, null, null);
    }

    /** Marks the job failed or cancelled; false when the lease was lost. */
    public boolean finish(UUID id, String owner, int attempt, String status, String resultJson, String error,
                          Integer errorStatus, String errorCode) {
        String sql = "UPDATE job SET status = ?, result = ?::json, error = ?, error_status = ?, error_code = ?, "
                + "progress = CASE WHEN ? = 'done' THEN 1 ELSE progress END, stage = ?, lease_until = NULL, "
                + "finished_at = clock_timestamp() "
                + "WHERE id = ? AND owner = ? AND attempts = ? AND status = 'running'";
        return update(sql, ps -> {
            ps.setString(1, status);
            ps.setString(2, resultJson);
            ps.setString(3, error);
            ps.setObject(4, errorStatus);
            ps.setString(5, errorCode);
            ps.setString(6, status);
            ps.setString(7, status);
            ps.setObject(8, id);
            ps.setString(9, owner);
            ps.setInt(10, attempt);
        }, "finish job " + id) == 1;
    }

    /**
     * Gives a job back to the queue without counting the attempt (its instance is shutting down, or its local
     * executor refused it); false when it was not this worker's any more.
     */
    public boolean release(UUID id, String owner, int attempt, String why) {
        String sql = "UPDATE job SET status = 'queued', owner = NULL, lease_until = NULL, attempts = attempts - 1, "
                + "progress = 0, stage = ? WHERE id = ? AND owner = ? AND attempts = ? AND status = 'running'";
        return update(sql, ps -> {
            ps.setString(1, "queued (" + why + ")");
            ps.setObject(2, id);
            ps.setString(3, owner);
            ps.setInt(4, attempt);
        }, "release job " + id) == 1;
    }

    /**
     * Ends an attempt that failed for a reason outside the job (the database went away while it ran or wrote its
     * result): back to the queue while attempts < max_attempts, counting this one, else failed with
     * {@code errorCode} and "gave up after N attempts: WHY". False when the job was not this worker's any more.
     */
    public boolean retry(UUID id, String owner, int attempt, String why, String errorCode) {
        String sql = "UPDATE job SET "
                + "status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END, "
                + "stage = CASE WHEN attempts < max_attempts THEN 'queued (' || ? || ')' ELSE 'failed' END, "
                + "error = CASE WHEN attempts < max_attempts THEN error "
                + "ELSE 'gave up after ' || attempts || ' attempts: ' || ? END, "
                + "error_code = CASE WHEN attempts < max_attempts THEN error_code ELSE ? END, "
                + "finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE clock_timestamp() END, "
                + "owner = CASE WHEN attempts < max_attempts THEN NULL ELSE owner END, "
                + "progress = CASE WHEN attempts < max_attempts THEN 0 ELSE progress END, lease_until = NULL "
                + "WHERE id = ? AND owner = ? AND attempts = ? AND status = 'running'";
        return update(sql, ps -> {
            ps.setString(1, why);
            ps.setString(2, why);
            ps.setString(3, errorCode);
            ps.setObject(4, id);
            ps.setString(5, owner);
            ps.setInt(6, attempt);
        }, "retry job " + id) == 1;
    }

    /**
     * Running jobs whose lease ran out (their instance stopped or hangs): cancelled when that was requested,
     * requeued while attempts < max_attempts, else failed with "worker OWNER stopped; gave up after N attempts".
     * Several reapers at once are safe: each locks the rows it changes and skips those locked by another (or by
     * a heartbeat in flight: they are looked at again on the next tick).
     */
    public List<Reaped> reap() {
        String sql = "WITH expired AS (SELECT id, owner FROM job WHERE status = 'running' "
                + "AND lease_until < clock_timestamp() FOR UPDATE SKIP LOCKED) "
                + "UPDATE job j SET "
                + "status = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempts < max_attempts THEN 'queued' "
                + "ELSE 'failed' END, "
                + "stage = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempts < max_attempts THEN "
                + "'queued (worker ' || j.owner || ' stopped during attempt ' || attempts || ' of ' || max_attempts "
                + "|| ')' ELSE 'failed' END, "
                + "error = CASE WHEN cancel_requested OR attempts < max_attempts THEN error ELSE "
                + "'worker ' || j.owner || ' stopped; gave up after ' || attempts || ' attempts' END, "
                + "error_code = CASE WHEN cancel_requested OR attempts < max_attempts THEN error_code "
                + "ELSE 'worker_lost' END, "
                + "finished_at = CASE WHEN attempts < max_attempts AND NOT cancel_requested THEN NULL "
                + "ELSE clock_timestamp() END, "
                + "owner = CASE WHEN attempts < max_attempts AND NOT cancel_requested THEN NULL ELSE j.owner END, "
                + "lease_until = NULL "
                + "FROM expired e WHERE j.id = e.id "
                + "RETURNING j.id, e.owner, j.status, j.attempts";
        List<Reaped> out = new ArrayList<>();
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(sql);
             ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                out.add(new Reaped(rs.getObject(1, UUID.class), rs.getString(2), rs.getString(3), rs.getInt(4)));
            }
            return out;
        } catch (SQLException e) {
            throw new IllegalStateException("cannot reap jobs: " + e.getMessage(), e);
        }
    }

    /** Deletes finished jobs beyond the newest {@code keep}; returns how many. */
    public int purge(int keep) {
        String sql = "DELETE FROM job WHERE finished_at IS NOT NULL AND id NOT IN "
                + "(SELECT id FROM job WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?)";
        return update(sql, ps -> ps.setInt(1, Math.max(0, keep)), "purge jobs");
    }

    /** Runs an INSERT, UPDATE or DELETE; returns the rows it changed. */
    private int update(String sql, Binder b, String what) {
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
            b.bind(ps);
            return ps.executeUpdate();
        } catch (SQLException e) {
            throw new IllegalStateException("cannot " + what + ": " + e.getMessage(), e);
        }
    }

    private interface Binder {
        void bind(PreparedStatement ps) throws SQLException;
    }

    private Optional<Job> one(String sql, Binder b, String what) {
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
            b.bind(ps);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(row(rs)) : Optional.empty();
            }
        } catch (SQLException e) {
            throw new IllegalStateException("cannot " + what + ": " + e.getMessage(), e);
        }
    }

    private static Job row(ResultSet rs) throws SQLException {
        return new Job(rs.getObject(1, UUID.class), rs.getString(2), rs.getString(3), rs.getString(4),
                rs.getString(5), rs.getDouble(6), rs.getString(7), rs.getInt(8), rs.getInt(9), rs.getString(10),
                rs.getString(19), rs.getString(11), (Integer) rs.getObject(12), rs.getString(13), rs.getBoolean(14),
                instant(rs.getTimestamp(15)), instant(rs.getTimestamp(16)), instant(rs.getTimestamp(17)),
                instant(rs.getTimestamp(18)));
    }

    private static Instant instant(Timestamp t) {
        return t == null ? null : t.toInstant();
    }
}
