package lab.steering.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import lab.steering.model.Threads;
import lab.steering.model.Transformer;
import lab.steering.model.Weights;
import lab.steering.steer.Fidelity;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeringOperator;

/**
 * Steering costs in one run ({@code scripts/bench.sh steering [model folder] [concept]}): per-token time of plain
 * decoding against operator-steered decoding (both with the KV cache), the incremental injection against the paper's
 * re-encode algorithm at 64 new tokens (5 interleaved rounds: best per method, and the median of the rounds'
 * speed-ups; the overhead likewise), that speed-up against the prompt's length next to the speed-up of the same
 * steps with nothing but the forward pass's weight products, and the operator's size in both forms with the low-rank
 * fidelity.
 */
public final class SteeringBench {

    private static final int NEW_TOKENS = 64;
    private static final int REPEATS = 5;

    public static void main(String[] args) {
        System.setProperty("ai.djl.offline", "true");
        Path folder = Path.of(args.length > 0 ? args[0] : "models/steering-lab-base");
        String concept = args.length > 1 ? args[1] : "And the LORD spake unto Moses, saying";
        String prompt = "The weather today is";
        double strength = 1.0;
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            int layer = OperatorBuilder.defaultLayer(m.config().numLayers());
            long[] conceptIds = m.tokenizer().encode(concept);
            long t0 = System.nanoTime();
            SteeringOperator dense = OperatorBuilder.full(m, conceptIds, layer, m.dataType(), r -> { });
            double buildMs = (System.nanoTime() - t0) / 1e6;
            SteeringOperator low = OperatorBuilder.lowRank(dense, 0, 0.99);
            Fidelity fid = Fidelity.of(m, dense, low);
            long[] ids = m.tokenizer().encode(prompt);
            GenerationParams p = GenerationParams.greedy(NEW_TOKENS);

            double plain = Double.MAX_VALUE;
            double steered = Double.MAX_VALUE;
            double steeredLow = Double.MAX_VALUE;
            double reencode = Double.MAX_VALUE;
            double[] speedUps = new double[REPEATS];
            double[] products = new double[REPEATS];
            double[] overheads = new double[REPEATS];
            double[] overheadsLow = new double[REPEATS];
            Generation last = null;
            Generation lastPlain = null;
            Generation reencoded = null;
            for (int r = 0; r < REPEATS; r++) { // interleaved so that load changes hit every method alike
                lastPlain = Generator.generate(m, ids, p, Hooks.NONE, true, false, t -> { });
                plain = Math.min(plain, lastPlain.perTokenMs());
                last = steer(m, dense, strength, ids, p, true);
                steered = Math.min(steered, last.perTokenMs());
                overheads[r] = last.perTokenMs() / lastPlain.perTokenMs();
                double lowMs = steer(m, low, strength, ids, p, true).perTokenMs();
                steeredLow = Math.min(steeredLow, lowMs);
                overheadsLow[r] = lowMs / lastPlain.perTokenMs();
                reencoded = steer(m, dense, strength, ids, p, false);
                reencode = Math.min(reencode, reencoded.perTokenMs());
                speedUps[r] = reencoded.perTokenMs() / last.perTokenMs();
                double[] bound = weightProductsMs(m, ids.length);
                products[r] = bound[1] / bound[0];
            }
            boolean same = Arrays.equals(ids(last), ids(reencoded));
            System.out.printf(Locale.ROOT, "model %s, concept \"%s\" (%d tokens), split layer %d of %d, strength %.2f, "
                    + "prompt \"%s\", %d new tokens, greedy%n%n", m.id(), concept, conceptIds.length, layer,
                    m.config().numLayers(), strength, prompt, NEW_TOKENS);
            System.out.println("| measure | value |");
            System.out.println("|---|---|");
            System.out.printf(Locale.ROOT, "| plain decoding, ms/token (KV cache) | %.2f |%n", plain);
            System.out.printf(Locale.ROOT, "| operator-steered, dense, ms/token (KV cache) | %.2f |%n", steered);
            System.out.printf(Locale.ROOT, "| operator-steered, low-rank r=%d, ms/token | %.2f |%n",
                    low.lowRank().rank(), steeredLow);
            System.out.printf(Locale.ROOT, "| **steering overhead (dense / plain)** (median round, range) | **%.2fx** "
                    + "(%.2f-%.2f) |%n", JacobianBench.median(overheads), JacobianBench.min(overheads),
                    JacobianBench.max(overheads));
            System.out.printf(Locale.ROOT, "| steering overhead (low-rank / plain) (median round, range) | %.2fx "
                    + "(%.2f-%.2f) |%n", JacobianBench.median(overheadsLow), JacobianBench.min(overheadsLow),
                    JacobianBench.max(overheadsLow));
            System.out.printf(Locale.ROOT, "| paper's algorithm (re-encode every step), ms/token | %.2f |%n", reencode);
            System.out.printf(Locale.ROOT, "| **incremental speed-up over re-encode at %d tokens** "
                    + "(median round, range) | **%.1fx** (%.1f-%.1f) |%n", NEW_TOKENS, JacobianBench.median(speedUps),
                    JacobianBench.min(speedUps), JacobianBench.max(speedUps));
            System.out.printf(Locale.ROOT, "| the same steps with nothing but the weight products (median round, "
                    + "range) | %.1fx (%.1f-%.1f) |%n", JacobianBench.median(products), JacobianBench.min(products),
                    JacobianBench.max(products));
            System.out.printf(Locale.ROOT, "| same greedy tokens as re-encode | %s |%n", same);
            System.out.printf(Locale.ROOT, "| operator build (Jacobian of the concept), ms | %.0f |%n", buildMs);
            System.out.printf(Locale.ROOT, "| dense operator size | %,d bytes (T_c d^2 float32) |%n",
                    dense.storedValues() * 4);
            System.out.printf(Locale.ROOT, "| low-rank operator size (99%% energy, r = %d) | %,d bytes |%n",
                    low.lowRank().rank(), low.storedValues() * 4);
            System.out.printf(Locale.ROOT, "| fidelity: cosine of injected v_k, mean / min | %.4f / %.4f |%n",
                    fid.meanCosine(), fid.minCosine());
            System.out.printf(Locale.ROOT, "| fidelity: cosine of running sums a_k, mean / min | %.4f / %.4f |%n",
                    fid.meanRunningCosine(), fid.minRunningCosine());
            System.out.println();
            System.out.println("plain:   " + lastPlain.completion().replace("\n", " / "));
            System.out.println("steered: " + last.completion().replace("\n", " / "));
            byPromptLength(m, dense, strength, p);
        }
    }

    /**
     * The speed-up against the prompt's length: re-encoding pays for the prompt at every step, the KV cache once.
     * Prompts are the first n tokens of one passage; 3 interleaved rounds each, median. Beside it the speed-up that
     * the same steps show with nothing but the forward pass's weight products ({@link #weightProductsMs}), as if
     * every other op (norms, attention, RoPE, the injection, sampling, the engine's per-op overhead) cost nothing on
     * both sides: what making those ops cheaper on both sides tends to.
     */
    static void byPromptLength(LanguageModel m, SteeringOperator op, double strength, GenerationParams p) {
        long[] passage = m.tokenizer().encode(PASSAGE);
        System.out.println();
        System.out.printf(Locale.ROOT, "| prompt tokens | steered, KV cache (ms/token) | re-encode (ms/token) "
                + "| speed-up at %d new tokens (median of 3 rounds) | weight products alone: one token / re-encode "
                + "(ms/token) | their speed-up (median of 3) |%n|---|---|---|---|---|---|%n", NEW_TOKENS);
        for (int n : new int[] {5, 16, 32, 64, 128}) {
            if (n > passage.length || n + NEW_TOKENS > m.config().maxPositions()) {
                continue;
            }
            long[] ids = Arrays.copyOf(passage, n);
            double[] cached = new double[3];
            double[] again = new double[3];
            double[] ratio = new double[3];
            double[] oneToken = new double[3];
            double[] whole = new double[3];
            double[] ceiling = new double[3];
            for (int r = 0; r < 3; r++) {
                cached[r] = steer(m, op, strength, ids, p, true).perTokenMs();
                again[r] = steer(m, op, strength, ids, p, false).perTokenMs();
                ratio[r] = again[r] / cached[r];
                double[] bound = weightProductsMs(m, n);
                oneToken[r] = bound[0];
                whole[r] = bound[1];
                ceiling[r] = bound[1] / bound[0];
            }
            System.out.printf(Locale.ROOT, "| %d | %.2f | %.2f | %.1fx | %.2f / %.2f | %.1fx |%n", n,
                    JacobianBench.median(cached), JacobianBench.median(again), JacobianBench.median(ratio),
                    JacobianBench.median(oneToken), JacobianBench.median(whole), JacobianBench.median(ceiling));
        }
    }

    /**
     * Per new token, the time of the forward pass's weight products alone (q, k, v, o, the MLP's and lm_head at the
     * last position, the model's own weights) over the steps that {@link Generation#perTokenMs()} times: one token
     * on the decoding threads, and the whole text of {@code promptTokens + step} tokens on the engine's threads, as
     * {@link Generator} runs them. Every other op is left out: {@code {one token, re-encode}} in ms.
     */
    static double[] weightProductsMs(LanguageModel m, int promptTokens) {
        Transformer tf = m.transformer();
        List<NDArray> mats = new ArrayList<>();
        for (Weights.Layer lw : tf.weights().layers()) {
            for (NDArray w : new NDArray[] {lw.wq(), lw.wk(), lw.wv(), lw.wo(), lw.gate(), lw.up(), lw.down()}) {
                if (w != null) {
                    mats.add(w);
                }
            }
        }
        double[] ms = new double[2];
        for (int side = 0; side < 2; side++) {
            long t0 = System.nanoTime();
            for (int step = 1; step < NEW_TOKENS; step++) {
                long t = side == 0 ? 1 : promptTokens + step;
                Threads.forStep(m.manager().getDevice(), t);
                try (NDManager s = m.manager().newSubManager()) {
                    Map<Long, NDArray> inputs = new HashMap<>(); // one input per width (d, ff, heads x head dim)
                    for (NDArray w : mats) {
                        long in = w.getShape().get(1);
                        NDArray x = inputs.computeIfAbsent(in, k -> s.ones(new Shape(t, k), w.getDataType()));
                        Transformer.linear(x, w, null);
                    }
                    NDArray last = s.ones(new Shape(1, m.config().hiddenSize()), tf.dataType());
                    tf.logits(last).getFloat(0, 0); // waits for the products (and lets none be skipped)
                }
            }
            ms[side] = (System.nanoTime() - t0) / 1e6 / (NEW_TOKENS - 1);
        }
        return ms;
    }

    /** A public-domain passage (Genesis 1:1-8, King James Version) to cut prompts of several lengths from. */
    private static final String PASSAGE = "In the beginning God created the heaven and the earth. And the earth "
            + "was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved "
            + "upon the face of the waters. And God said, Let there be light: and there was light. And God saw the "
            + "light, that it was good: and God divided the light from the darkness. And God called the light Day, "
            + "and the darkness he called Night. And the evening and the morning were the first day. And God said, Let "
            + "there be a firmament in the midst of the waters, and let it divide the waters from the waters. And God "
            + "made the firmament, and divided the waters which were under the firmament from the waters which were "
            + "above the firmament: and it was so. And God called the firmament Heaven. And the evening and the "
            + "morning were the second day.";


    static long[] ids(Generation g) {
        return g.tokens().stream().mapToLong(t -> t.id()).toArray();
    }

    static Generation steer(LanguageModel m, SteeringOperator op, double strength, long[] ids, GenerationParams p,
                            boolean cache) {
        try (NDManager nd = m.manager().newSubManager()) {
            Injector inj = new Injector(op, strength, nd, m.dataType());
            return Generator.generate(m, ids, p, inj.hooks(), cache, false, t -> { });
        }
    }
}
