package lab.steering.service.models;

import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import lab.steering.config.LabConfig;
import lab.steering.generate.BatchDecoder;
import lab.steering.generate.Decode;
import lab.steering.model.LanguageModel;
import lab.steering.service.Busy;
import lab.steering.service.ClientGone;

/**
 * The batched decoder of each loaded model ({@link BatchDecoder}, made on first use): every generation of the app
 * (generate, steer, its streaming, sweeps) runs as rows of its model's decoding steps, so that concurrent requests
 * share one forward pass per token. Requests are bounded ({@code lab.batch.max-rows} decoding,
 * {@code lab.batch.max-waiting} waiting, beyond which {@link Busy}, the API's 429); jobs, admitted by the
 * job queue, wait for their places. A model's decoder stops when the model is unloaded ({@link ModelRegistry}).
 */
@ApplicationScoped
public class Decoders {

    /** How often a waiting thread checks its client and reports progress. */
    private static final long CHECK_MS = 200;
    private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(Decoders.class);

    @Inject
    LabConfig config;

    private final Map<LanguageModel, BatchDecoder> byModel = new IdentityHashMap<>();

    /** The model's decoder (started on first use; started again if its thread died on an unexpected error). */
    public synchronized BatchDecoder of(LanguageModel model) {
        if (model.isClosed()) {
            throw new IllegalStateException("model '" + model.id() + "' was unloaded");
        }
        BatchDecoder d = byModel.get(model);
        if (d == null || !d.running()) {
            if (d != null) {
                LOG.errorf("the batched decoder of model '%s' had stopped; starting a new one", model.id());
                d.close();
            }
            d = new BatchDecoder(model, Math.max(2, config.batch().maxRows()), config.batch().maxWaiting());
            byModel.put(model, d);
        }
        return d;
    }

    /**
     * Runs the decodings of one request and waits for them; stops them if the request's client goes away.
     *
     * @throws Busy when the model's waiting rows are at their bound
     */
    public void run(LanguageModel model, Decode... ds) {
        CompletableFuture<Void> f;
        try {
            f = of(model).submit(ds);
        } catch (BatchDecoder.Full e) {
            throw new Busy("generation refused: " + e.getMessage(), e.retryAfterSeconds());
        }
        await(f, ds, ClientGone.watch(), () -> { });
    }

    /**
     * Runs a job's decodings (no bound on waiting) and waits, calling {@code tick} about every 200 ms (a progress
     * point: when it throws, the decodings are cancelled and the exception goes on).
     */
    public void runQueued(LanguageModel model, Runnable tick, Decode... ds) {
        await(of(model).submitQueued(ds), ds, () -> false, tick);
    }

    private static void await(CompletableFuture<Void> f, Decode[] ds, BooleanSupplier gone, Runnable tick) {
        try {
            while (true) {
                try {
                    f.get(CHECK_MS, TimeUnit.MILLISECONDS);
                    return;
                } catch (TimeoutException e) {
                    if (gone.getAsBoolean()) {
                        cancel(ds);
                        throw new ClientGone.Abandoned("the client closed its connection; its generation was stopped");
                    }
                    try {
                        tick.run();
                    } catch (RuntimeException stop) { // a job's progress point saw a cancellation
                        cancel(ds);
                        throw stop;
                    }
                }
            }
        } catch (InterruptedException e) {
            cancel(ds);
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted while decoding");
        } catch (CancellationException e) {
            cancel(ds);
            throw e;
        } catch (ExecutionException e) {
            cancel(ds);
            throw ClientGone.rethrown(e);
        }
    }

    private static void cancel(Decode[] ds) {
        for (Decode d : ds) {
            d.cancel();
        }
    }

    /** Whether the model's decoder has rows decoding or waiting (the model is in use then). */
    public synchronized boolean busy(LanguageModel model) {
        BatchDecoder d = byModel.get(model);
        if (d == null || !d.running()) {
            return false;
        }
        int[] load = d.load();
        return load[0] + load[1] > 0;
    }

    /** Stops the decoder of a model being unloaded (its thread and KV cache go; a later use starts another). */
    void onUnload(@Observes ModelRegistry.Unloaded e) {
        BatchDecoder d;
        synchronized (this) {
            d = byModel.remove(e.model());
        }
        if (d != null) {
            d.close();
        }
    }

    @PreDestroy
    synchronized void close() {
        byModel.values().forEach(BatchDecoder::close);
        byModel.clear();
    }
}
