package lab.steering.service;

/**
 * A steering request the services refuse: the HTTP status, a stable error code and a message naming the problem
 * (web/ maps it to {"error", "message"}). Services throw it for what only they can check: an operator or model
 * that is not there, a fingerprint mismatch, a file that is not a valid operator, a model too large for the model
 * memory budget.
 */
public class Refusal extends RuntimeException {

    private final int status;
    private final String code;
    private final java.util.Map<String, Object> details = new java.util.LinkedHashMap<>();

    public Refusal(int status, String code, String message) {
        super(message);
        this.status = status;
        this.code = code;
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }

    /** An extra field of the JSON body (e.g. a memory estimate and the limit), after "error" and "message". */
    public Refusal detail(String key, Object value) {
        details.put(key, value);
        return this;
    }

    public java.util.Map<String, Object> details() {
        return details;
    }
}
