package lab.steering.service;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.concurrent.Future;

/** {@link BackgroundJobs} on the shared {@link WorkLimiter}: the same bounds as every other heavy request. */
@ApplicationScoped
public class LimiterJobs implements BackgroundJobs {

    @Inject
    WorkLimiter limiter;

    @Override
    public Future<?> submit(String what, Runnable task) {
        try {
            return limiter.submit(() -> {
                task.run();
                return null;
            });
        } catch (WorkLimiter.Busy e) {
            throw new WorkLimiter.Busy(what + " refused: " + e.getMessage(), e.retryAfterSeconds());
        }
    }

    @Override
    public void drop(Future<?> queued) {
        limiter.remove(queued);
    }
}
