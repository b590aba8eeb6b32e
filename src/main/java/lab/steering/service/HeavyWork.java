package lab.steering.service;

import jakarta.enterprise.context.ApplicationScoped;
import java.util.function.Supplier;

/**
 * The single entrance for heavy steering work: operator builds (including rebuilds at another layer) and sweeps.
 * <p>
 * TODO(merge with the jobs branch): run {@code work} through the shared bounded executor there, which answers 429
 * when it is full. Until then the work runs on the caller's thread and nothing bounds how many run at once.
 */
@ApplicationScoped
public class HeavyWork {

    /** Runs {@code work}; {@code what} names it ("operator build", "sweep") for the limiter's errors and logs. */
    public <T> T run(String what, Supplier<T> work) {
        return work.get();
    }
}
