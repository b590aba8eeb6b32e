package lab.steering.service;

import io.quarkus.arc.Arc;
import io.vertx.core.http.HttpServerRequest;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.function.BooleanSupplier;
import org.jboss.resteasy.reactive.server.core.CurrentRequestManager;
import org.jboss.resteasy.reactive.server.core.ResteasyReactiveRequestContext;

/**
 * Whether the HTTP client of the request that the calling thread serves has gone away (closed its connection).
 * The synchronous endpoints wait for heavy work ({@link WorkLimiter#run}, {@link JobQueue#await}); when nobody is
 * left to read the answer they stop that work and free its slot instead of finishing it for no one.
 */
public final class ClientGone {

    /** Thrown to the waiting request thread when its client went away and its work was stopped. */
    public static final class Abandoned extends CancellationException {
        public Abandoned(String message) {
            super(message);
        }
    }

    private static final BooleanSupplier NEVER = () -> false;

    private ClientGone() {
    }

    /**
     * A check of the current request's connection, to be called later from the same or another thread; never true
     * outside a request (job workers, code that calls the services directly).
     */
    public static BooleanSupplier watch() {
        io.quarkus.arc.ArcContainer arc = Arc.container(); // null outside a running app (plain unit tests)
        if (arc == null || !arc.requestContext().isActive()) { // or a job worker, or a test calling a service
            return NEVER;
        }
        ResteasyReactiveRequestContext context = CurrentRequestManager.get();
        if (context == null) {
            return NEVER;
        }
        HttpServerRequest request = context.serverRequest().unwrap(HttpServerRequest.class);
        return request == null ? NEVER : request.response()::closed;
    }

    /**
     * What the waiting thread throws for a task that failed: the task's own exception as it was thrown (an Error is
     * thrown from here), anything else wrapped.
     */
    public static RuntimeException rethrown(ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof RuntimeException re) {
            return re;
        }
        if (cause instanceof Error err) {
            throw err;
        }
        return new IllegalStateException(cause);
    }
}
