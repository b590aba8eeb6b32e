package lab.steering.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import lab.steering.steer.Fidelity;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeringOperator;

/**
 * Steering costs in one run ({@code scripts/bench.sh steering [model folder] [concept]}): per-token time of plain
 * decoding against operator-steered decoding (both with the KV cache), the incremental injection against the paper's
 * re-encode algorithm at 64 new tokens (5 interleaved rounds: best per method, and the median of the rounds'
 * speed-ups), that speed-up against the prompt's length, and the operator's size in both forms with the low-rank
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
            Generation last = null;
            Generation lastPlain = null;
            Generation reencoded = null;
            for (int r = 0; r < REPEATS; r++) { // interleaved so that load changes hit every method alike
                lastPlain = Generator.generate(m, ids, p, Hooks.NONE, true, false, t -> { });
                plain = Math.min(plain, lastPlain.perTokenMs());
                last = steer(m, dense, strength, ids, p, true);
                steered = Math.min(steered, last.perTokenMs());
                steeredLow = Math.min(steeredLow, steer(m, low, strength, ids, p, true).perTokenMs());
                reencoded = steer(m, dense, strength, ids, p, false);
                reencode = Math.min(reencode, reencoded.perTokenMs());
                speedUps[r] = reencoded.perTokenMs() / last.perTokenMs();
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
            System.out.printf(Locale.ROOT, "| **steering overhead (dense / plain)** | **%.2fx** |%n", steered / plain);
            System.out.printf(Locale.ROOT, "| steering overhead (low-rank / plain) | %.2fx |%n", steeredLow / plain);
            System.out.printf(Locale.ROOT, "| paper's algorithm (re-encode every step), ms/token | %.2f |%n", reencode);
            System.out.printf(Locale.ROOT, "| **incremental speed-up over re-encode at %d tokens** "
                    + "(median round, range) | **%.1fx** (%.1f-%.1f) |%n", NEW_TOKENS, JacobianBench.median(speedUps),
                    JacobianBench.min(speedUps), JacobianBench.max(speedUps));
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
     * Prompts are the first n tokens of one passage; 3 interleaved rounds each, median.
     */
    static void byPromptLength(LanguageModel m, SteeringOperator op, double strength, GenerationParams p) {
        long[] passage = m.tokenizer().encode(PASSAGE);
        System.out.println();
        System.out.printf(Locale.ROOT, "| prompt tokens | steered, KV cache (ms/token) | re-encode (ms/token) "
                + "| speed-up at %d new tokens (median of 3 rounds) |%n|---|---|---|---|%n", NEW_TOKENS);
        for (int n : new int[] {5, 16, 32, 64}) {
            if (n > passage.length || n + NEW_TOKENS > m.config().maxPositions()) {
                continue;
            }
            long[] ids = Arrays.copyOf(passage, n);
            double[] cached = new double[3];
            double[] again = new double[3];
            double[] ratio = new double[3];
            for (int r = 0; r < 3; r++) {
                cached[r] = steer(m, op, strength, ids, p, true).perTokenMs();
                again[r] = steer(m, op, strength, ids, p, false).perTokenMs();
                ratio[r] = again[r] / cached[r];
            }
            System.out.printf(Locale.ROOT, "| %d | %.2f | %.2f | %.1fx |%n", n, JacobianBench.median(cached),
                    JacobianBench.median(again), JacobianBench.median(ratio));
        }
    }

    /** A public-domain passage (Genesis 1:1-5, King James Version) to cut prompts of several lengths from. */
    private static final String PASSAGE = "In the beginning God created the heaven and the earth. And the earth "
            + "was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved "
            + "upon the face of the waters. And God said, Let there be light: and there was light. And God saw the "
            + "light, that it was good: and God divided the light from the darkness. And God called the light Day, "
            + "and the darkness he called Night. And the evening and the morning were the first day.";


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
