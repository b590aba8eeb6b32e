package lab.steering.generate;

import ai.djl.ndarray.NDManager;
import lab.steering.hook.Hooks;
import lab.steering.model.KvCache;
import lab.steering.model.LanguageModel;
import lab.steering.model.Transformer;

/**
 * Runs {@link Decode}s without batching, on the calling thread: each row with its own one-row {@link KvCache}, one
 * forward per row and token. This is the reference the batched scheduler ({@link BatchDecoder}) is tested against,
 * and what runs when batching is off.
 */
public final class DecodeDriver {

    private DecodeDriver() {
    }

    /**
     * Runs the decodings to their ends (or until each is cancelled) in lockstep, one token of each in turn, and
     * closes them; every NDArray is freed on return.
     */
    public static void alone(LanguageModel model, Decode... ds) {
        Transformer tf = model.decoder();
        try (NDManager m = model.manager().newSubManager()) {
            try {
                Run[] runs = new Run[ds.length];
                for (int i = 0; i < ds.length; i++) {
                    runs[i] = new Run(tf, m, ds[i]);
                }
                boolean any = true;
                while (any) {
                    any = false;
                    for (Run r : runs) {
                        any |= r.advance();
                    }
                }
            } finally {
                closeAll(ds);
            }
        }
    }

    /** Closes every decoding, rethrowing the first failure after trying all. */
    static void closeAll(Decode... ds) {
        RuntimeException first = null;
        for (Decode d : ds) {
            try {
                d.close();
            } catch (RuntimeException e) {
                first = first == null ? e : first;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** One decoding's rows, each with its own cache. */
    private static final class Run {
        private final Transformer tf;
        private final NDManager m;
        private final Decode d;
        private final Hooks[] hooks;
        private final KvCache[] caches;
        private final float[][] logits;
        private final long[] ns;
        private boolean done;

        Run(Transformer tf, NDManager m, Decode d) {
            this.tf = tf;
            this.m = m;
            this.d = d;
            this.hooks = d.start(m);
            int rows = hooks.length;
            int cap = Math.min(d.prompt().length + 64, tf.config().maxPositions());
            this.caches = new KvCache[rows];
            this.logits = new float[rows][];
            this.ns = new long[rows];
            for (int r = 0; r < rows; r++) {
                caches[r] = new KvCache(m, tf.config(), 1, cap, tf.dataType());
                logits[r] = Generator.lastLogits(tf, m, d.prompt(), caches[r], hooks[r]);
            }
            d.prompted(logits);
        }

        /** One token: sample it and, unless it was the last, run its forward on every row. False once ended. */
        boolean advance() {
            if (done) {
                return false;
            }
            long token = d.cancelled() ? -1 : d.next();
            if (token < 0) {
                done = true;
                return false;
            }
            long[] ids = {token};
            for (int r = 0; r < caches.length; r++) {
                long t0 = System.nanoTime();
                logits[r] = Generator.lastLogits(tf, m, ids, caches[r], hooks[r]);
                ns[r] = System.nanoTime() - t0;
            }
            d.stepped(logits, ns);
            return true;
        }
    }
}
