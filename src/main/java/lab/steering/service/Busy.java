package lab.steering.service;

/**
 * Refused for now: every worker busy and the queue full ({@code WorkLimiter}), or a model busy loading or held by
 * running work ({@code ModelRegistry}); the API answers 429 with Retry-After.
 */
public final class Busy extends RuntimeException {
    private final int retryAfterSeconds;

    public Busy(String message, int retryAfterSeconds) {
        super(message);
        this.retryAfterSeconds = retryAfterSeconds;
    }

    public int retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
