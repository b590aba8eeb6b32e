package lab.steering.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import lab.steering.hook.Hooks;
import lab.steering.model.KvCache;
import lab.steering.model.LanguageModel;
import lab.steering.model.Threads;
import lab.steering.model.Transformer;

/**
 * Autoregressive decoding of one sequence. With the KV cache (the default) each step feeds one new token;
 * without it, every step re-encodes the whole text (the reference the cache is tested against).
 * Every NDArray a call makes is freed before it returns.
 */
public final class Generator {

    private Generator() {
    }

    public static Generation generate(LanguageModel model, long[] promptIds, GenerationParams params, Hooks hooks) {
        return generate(model, promptIds, params, hooks, true, true, t -> { });
    }

    /**
     * @param useCache  false: re-encode the full text at every step (slow; for tests and benchmarks)
     * @param stopAtEos false: keep going past EOS (benchmarks that need an exact length)
     * @param onToken   called after each token (streaming)
     */
    public static Generation generate(LanguageModel model, long[] promptIds, GenerationParams params, Hooks hooks,
                                      boolean useCache, boolean stopAtEos, Consumer<GeneratedToken> onToken) {
        if (promptIds.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        Transformer tf = model.decoder(); // bfloat16/float16 on a GPU when LAB_GPU_DTYPE says so
        int context = tf.config().maxPositions();
        List<Integer> eos = tf.config().eosTokenIds();
        Sampler sampler = new Sampler(params);
        long[] seq = Arrays.copyOf(promptIds, promptIds.length + params.maxNewTokens());
        int len = promptIds.length;
        List<GeneratedToken> out = new ArrayList<>();
        Generation.FinishReason finish = Generation.FinishReason.length;
        long t0 = System.nanoTime();
        long tFirst = t0;
        try (NDManager m = model.manager().newSubManager();
             KvCache cache = useCache ? new KvCache(m, tf.config(), 1, Math.min(seq.length, context), tf.dataType())
                     : null) {
            float[] logits = lastLogits(tf, m, promptIds, cache, hooks);
            long tPrompt = System.nanoTime();
            for (int step = 0; step < params.maxNewTokens(); step++) {
                int next = sampler.next(logits, seq, len);
                seq[len++] = next;
                String piece = model.tokenizer().pieceAt(Arrays.copyOf(seq, len), len - 1);
                GeneratedToken tok = new GeneratedToken(next, piece, Sampler.logProb(logits, next));
                out.add(tok);
                onToken.accept(tok);
                if (step == 0) {
                    tFirst = System.nanoTime();
                }
                if (stopAtEos && eos.contains(next)) {
                    finish = Generation.FinishReason.eos;
                    break;
                }
                if (step == params.maxNewTokens() - 1) {
                    break;
                }
                if (len >= context) {
                    finish = Generation.FinishReason.context;
                    break;
                }
                logits = useCache
                        ? lastLogits(tf, m, new long[] {next}, cache, hooks)
                        : lastLogits(tf, m, Arrays.copyOf(seq, len), null, hooks);
            }
            long tEnd = System.nanoTime();
            long[] gen = out.stream().mapToLong(GeneratedToken::id).toArray();
            double perToken = out.size() > 1 ? (tEnd - tFirst) / 1e6 / (out.size() - 1) : (tEnd - tPrompt) / 1e6;
            return new Generation(promptIds, model.tokenizer().pieces(promptIds), List.copyOf(out),
                    model.tokenizer().decodeText(gen), finish, (tPrompt - t0) / 1e6, perToken);
        }
    }

    /** Logits (float32) of the last position after feeding {@code ids} (continuing {@code cache} when given). */
    public static float[] lastLogits(Transformer tf, NDManager m, long[] ids, KvCache cache, Hooks hooks) {
        Threads.forStep(m.getDevice(), ids.length);
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray input = m.create(ids, new Shape(1, ids.length));
            NDArray hidden = tf.forward(input, cache, hooks);
            NDArray last = ids.length == 1 ? hidden.reshape(1, -1) : hidden.get(new NDIndex(":, -1, :"));
            return tf.logits(last).toType(DataType.FLOAT32, false).toFloatArray();
        }
    }

    /** Logits at every position (t, vocab) in float64, one stand-alone pass from position 0 (tests, analysis). */
    public static double[][] allLogits(LanguageModel model, long[] ids, Hooks hooks) {
        Transformer tf = model.transformer();
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray input = m.create(ids, new Shape(1, ids.length));
            NDArray logits = tf.logits(tf.forward(input, null, hooks)).toType(DataType.FLOAT64, false);
            int v = tf.config().vocabSize();
            double[] flat = logits.toDoubleArray();
            double[][] out = new double[ids.length][];
            for (int i = 0; i < ids.length; i++) {
                out[i] = Arrays.copyOfRange(flat, i * v, (i + 1) * v);
            }
            return out;
        }
    }
}
