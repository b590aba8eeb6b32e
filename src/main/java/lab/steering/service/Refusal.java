package lab.steering.service;

/**
 * A steering request the services refuse: the HTTP status, a stable error code and a message naming the problem
 * (web/ maps it to {"error", "message"}). Services throw it for what only they can check: an operator or model
 * that is not there, a fingerprint mismatch, a file that is not a valid operator.
 */
public class Refusal extends RuntimeException {

    private final int status;
    private final String code;
    private final java.util.UUID jobId;

    public Refusal(int status, String code, String message) {
        this(status, code, message, null);
    }

    /** A refusal about a job: the answer carries its id, so that the client can follow it (GET /api/jobs/{id}). */
    public Refusal(int status, String code, String message, java.util.UUID jobId) {
        super(message);
        this.status = status;
        this.code = code;
        this.jobId = jobId;
    }

    /** The job the refused request had queued or found (null: none). */
    public java.util.UUID jobId() {
        return jobId;
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }
}
