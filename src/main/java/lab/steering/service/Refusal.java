package lab.steering.service;

/**
 * A steering request the services refuse: the HTTP status, a stable error code and a message naming the problem
 * (web/ maps it to {"error", "message"}). Services throw it for what only they can check: an operator or model
 * that is not there, a fingerprint mismatch, a file that is not a valid operator.
 */
public class Refusal extends RuntimeException {

    private final int status;
    private final String code;

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
}
