package lab.steering.service;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;

/**
 * The one type for a request the app refuses, wherever the check lives (a resource reading its fields, a service, a
 * job): a {@link Kind}, a stable error code ({@code invalid_prompt}, {@code unknown_model}, ...), a message naming
 * the problem, optionally the job it concerns and extra fields (an estimate, a limit). The web layer turns it into
 * {@code {"error": code, "message": ..., ...details}} with the kind's HTTP status; nothing else carries a status.
 */
public class Refusal extends RuntimeException {

    /** What kind of refusal; its HTTP status is given here and nowhere else. */
    public enum Kind {
        /** A field or a body the app cannot take. */
        INVALID(400),
        /** Something the request names is not there. */
        NOT_FOUND(404),
        /** The request contradicts the state of what it names (a fingerprint, a job's state, a key in use). */
        CONFLICT(409),
        /** The work would need more memory or time than the limits allow. */
        TOO_LARGE(413),
        /** Well-formed, but not what this request may do (an idempotency key used for another request). */
        UNPROCESSABLE(422),
        /** Too much work is running or waiting. */
        BUSY(429),
        /** The work failed inside. */
        FAILED(500),
        /** A resource it needs (the database, the device) is away for now. */
        UNAVAILABLE(503),
        /** The work did not finish in the time allowed. */
        TIMEOUT(504);

        private final int status;

        Kind(int status) {
            this.status = status;
        }

        public int status() {
            return status;
        }

        /** The kind of an HTTP status stored with a failed job (any other status: FAILED). */
        public static Kind of(int status) {
            for (Kind k : values()) {
                if (k.status == status) {
                    return k;
                }
            }
            return status >= 400 && status < 500 ? INVALID : FAILED;
        }
    }

    private final Kind kind;
    private final String code;
    private final UUID jobId;
    private final Map<String, Object> details = new LinkedHashMap<>();

    public Refusal(Kind kind, String code, String message) {
        this(kind, code, message, null);
    }

    /** A refusal about a job: the answer carries its id, so that the client can follow it (GET /api/jobs/{id}). */
    public Refusal(Kind kind, String code, String message, UUID jobId) {
        super(message);
        this.kind = kind;
        this.code = code;
        this.jobId = jobId;
    }

    /** 400 {@code invalid_FIELD}: "FIELD: problem". */
    public static Refusal invalidField(String field, String problem) {
        return new Refusal(Kind.INVALID, "invalid_" + field, field + ": " + problem);
    }

    public static Refusal notFound(String code, String message) {
        return new Refusal(Kind.NOT_FOUND, code, message);
    }

    /** An extra field of the answer (e.g. an estimate), after "error" and "message". */
    public Refusal detail(String key, Object value) {
        details.put(key, value);
        return this;
    }

    public Kind kind() {
        return kind;
    }

    public String code() {
        return code;
    }

    /** The job the refused request had queued or found (null: none). */
    public UUID jobId() {
        return jobId;
    }

    public Map<String, Object> details() {
        return Collections.unmodifiableMap(details);
    }
}
