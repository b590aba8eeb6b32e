package lab.steering.service.jobs;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.function.Supplier;
import lab.steering.service.Busy;

/**
 * The entrance for heavy steering work done inside a request: the rebuild of an operator at another layer for a
 * steering comparison. (Operator builds and sweeps run as jobs, {@link JobQueue}, whose workers also go through
 * the limiter.) It shares the {@link WorkLimiter} with the Jacobian analyses, so at most its limits run or wait at
 * once and anything beyond is refused with {@link Busy} (the API's 429).
 */
@ApplicationScoped
public class HeavyWork {

    @Inject
    WorkLimiter limiter;

    /** Runs {@code work} on a limiter worker and waits for it; {@code what} names it ("operator build", "sweep"). */
    public <T> T run(String what, Supplier<T> work) {
        try {
            return limiter.run(work::get);
        } catch (Busy e) {
            throw new Busy(what + " refused: " + e.getMessage(), e.retryAfterSeconds());
        }
    }
}
