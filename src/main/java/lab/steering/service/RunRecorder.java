package lab.steering.service;

import java.util.function.Supplier;
import lab.steering.store.DatabaseErrors;
import org.jboss.logging.Logger;

/**
 * Stores what a request computed (a generation, a steering run, a one-prompt comparison) unless the database is away:
 * the answer never waits on the database, it just comes back without an id. One rule for every recorder.
 */
public final class RunRecorder {

    private static final Logger LOG = Logger.getLogger(RunRecorder.class);

    private RunRecorder() {
    }

    /**
     * {@code store}'s result (the stored row's id), or null when the database is unavailable (logged, naming
     * {@code what}); any other failure is thrown.
     */
    public static <T> T unlessDatabaseDown(String what, Supplier<T> store) {
        try {
            return store.get();
        } catch (RuntimeException e) {
            if (!DatabaseErrors.unavailable(e)) {
                throw e;
            }
            LOG.warnf("%s not stored, the database is unavailable: %s", what, e.getMessage());
            return null;
        }
    }
}
