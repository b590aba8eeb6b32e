package lab.steering.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import lab.steering.jacobian.Analysis;
import lab.steering.jacobian.JacobianEngine;
import lab.steering.jacobian.JacobianStack;
import lab.steering.jacobian.LowRank;
import lab.steering.jacobian.Svd;
import lab.steering.jacobian.Target;
import lab.steering.jacobian.TokenDecoder;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelConfig;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

/**
 * Full detached Jacobian of an 8-token prompt in float32, in one run: time, achieved GFLOP/s next to a plain
 * 1024x1024 float32 matmul measured in the same run, speed-up over autograd (per output row, and batched), and the
 * matrix-free top-8. Steady state, after 10 warm-up passes: 5 rounds, each of 5 transpose passes and one run of each
 * per-row autograd (d backward passes: the graph kept, and a forward pass per row); a speed-up is the median over
 * rounds of the autograd time over the round's median pass (the two sides of each ratio measured side by side);
 * GFLOP/s from the best pass against the best plain matmul of the run. The speed-up's ceiling: the pass's FLOPs at
 * that matmul's speed, nothing else in it. Batched autograd: median of 3 after one.
 *
 * <p>A second table, issue 17's matrix-free cases ({@link LowRank}, default tolerances): on every model up to d = 1024
 * the top-8 of an 8-token prompt against the full Jacobian (interleaved rounds, the median round's ratio), the same
 * with the basis never completed (the iteration alone), and the top-8 of a 128-token prompt, each with the relative
 * errors of its values against the exact SVDs of the full stack; on a wider model (the random Llama 3.2 1B-shaped
 * checkpoint of scripts/random-checkpoint.sh) only the top-4 of an 8-token prompt. Models wider than 1024 skip the
 * first table.
 * {@code scripts/bench.sh jacobian [model folders...]}.
 */
public final class JacobianBench {

    private static final int WARM_UP = 10;
    private static final int ROUNDS = 5;
    private static final int PASSES_PER_ROUND = 5;

    public static void main(String[] args) {
        System.setProperty("ai.djl.offline", "true");
        System.out.println("| model | d | layers | T | full J, median / best (ms) | GFLOP/s (best) | "
                + "plain matmul GFLOP/s (best) | of matmul | "
                + "autograd per-row, graph kept (ms) | speed-up, median round (range) | "
                + "ceiling: pass FLOPs at matmul speed (ms) | speed-up ceiling | "
                + "autograd per-row, forward per row (ms) | speed-up | autograd batched (ms) | speed-up | "
                + "top-8 matrix-free (ms) | relErr | "
                + "analysis, no sweep (ms) | analysis + ordinary (ms) |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        List<String> lowRankRows = new ArrayList<>();
        for (String a : args) {
            Path folder = Path.of(a);
            if (!Files.isDirectory(folder)) {
                System.err.println("skipped (absent): " + folder);
                continue;
            }
            try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
                if (m.config().hiddenSize() <= LARGE) {
                    run(m);
                    lowRankRows.addAll(lowRankSmall(m));
                } else {
                    lowRankRows.addAll(lowRankLarge(m));
                }
            }
        }
        System.out.println();
        System.out.println("| model | d | T | k | full J (ms) | matrix-free (ms) | ratio, median round | "
                + "max rel. error of the top-k values (per token / combined) | rounds | basis | passes fwd + bwd | "
                + "passes / Rayleigh-Ritz (ms) | converged (residual) |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        lowRankRows.forEach(System.out::println);
    }

    static void run(LanguageModel m) {
        // the plain 1024x1024 matmul, best of 10 now and best of 3 in every round: on a shared machine one
        // measurement can fall in a slow minute, and the share compares best with best
        double matmul = matmulGflops(10);
        int t = 8;
        long[] ids = new long[t];
        int v = m.config().vocabSize();
        for (int i = 0; i < t; i++) {
            ids[i] = v / 3 + i * 11L % (v / 2);
        }
        Target out = Target.output(m.config().numLayers());
        // steady state, as for every method below: the first passes pay for JIT compilation and for fresh pages
        // (the allocator's mmap threshold rises after the first large frees)
        for (int r = 0; r < WARM_UP; r++) {
            JacobianEngine.full(m, ids, DataType.FLOAT32, out, 256L << 20, x -> { });
        }
        // the speed-ups over per-row autograd, interleaved: each round times the transpose pass 5 times and each
        // per-row autograd once (d backward passes, 1-2 s), and a round's ratio is over its median pass, so that both
        // sides of every ratio see the same load on a shared machine; the median round is reported
        double full = Double.MAX_VALUE;
        JacobianStack stack = null;
        double[] passes = new double[ROUNDS * PASSES_PER_ROUND];
        double[] rows = new double[ROUNDS];        // per-row autograd, the graph kept
        double[] ratios = new double[ROUNDS];
        double[] reforward = new double[ROUNDS];   // per-row autograd, a forward pass per row
        double[] reforwardRatios = new double[ROUNDS];
        long t0;
        for (int round = 0; round < ROUNDS; round++) {
            matmul = Math.max(matmul, matmulGflops(3));
            double[] inRound = new double[PASSES_PER_ROUND];
            for (int r = 0; r < PASSES_PER_ROUND; r++) {
                t0 = System.nanoTime();
                stack = JacobianEngine.full(m, ids, DataType.FLOAT32, out, 256L << 20, x -> { });
                inRound[r] = (System.nanoTime() - t0) / 1e6;
                passes[round * PASSES_PER_ROUND + r] = inRound[r];
                full = Math.min(full, inRound[r]);
            }
            t0 = System.nanoTime();
            JacobianEngine.autogradPerRow(m, ids, DataType.FLOAT32, out, true);
            rows[round] = (System.nanoTime() - t0) / 1e6;
            ratios[round] = rows[round] / median(inRound);
            t0 = System.nanoTime();
            JacobianEngine.autogradPerRow(m, ids, DataType.FLOAT32, out, false);
            reforward[round] = (System.nanoTime() - t0) / 1e6;
            reforwardRatios[round] = reforward[round] / median(inRound);
        }
        double flops = transposeFlops(m.config(), t, DataType.FLOAT32, 256L << 20);
        double gflops = flops / (full / 1000) / 1e9;
        double fullMedian = median(passes);
        double perRow = median(rows);
        JacobianEngine.autogradOracle(m, ids, DataType.FLOAT32, out);
        double[] batchedRuns = new double[3];
        for (int r = 0; r < 3; r++) {
            t0 = System.nanoTime();
            JacobianEngine.autogradOracle(m, ids, DataType.FLOAT32, out);
            batchedRuns[r] = (System.nanoTime() - t0) / 1e6;
        }
        double batched = median(batchedRuns);
        t0 = System.nanoTime();
        LowRank.topK(m, ids, DataType.FLOAT32, out, lowRankSettings(8));
        double lowRank = (System.nanoTime() - t0) / 1e6;
        // the whole analysis of the output (J + per-token and combined SVD + decoding + reconstruction), best of 3;
        // its timings split out the ordinary Jacobian (the paper's contrast, an autograd pass of its own)
        double analysis = Double.MAX_VALUE;
        double withOrdinary = Double.MAX_VALUE;
        {
            TokenDecoder decoder = new TokenDecoder(m);
            Analysis.Options o = new Analysis.Options(Analysis.Method.FULL, DataType.FLOAT32, 8, new int[0],
                    Target.Mode.CUMULATIVE, Target.Component.LAYER, false, 64L << 20);
            Analysis.run(m, ids, o, decoder, Analysis.Progress.NONE);
            for (int r = 0; r < 3; r++) {
                Analysis.Timings tm = Analysis.run(m, ids, o, decoder, Analysis.Progress.NONE).timings();
                analysis = Math.min(analysis, tm.totalMs() - tm.ordinaryMs());
                withOrdinary = Math.min(withOrdinary, tm.totalMs());
            }
        }
        // the pass's multiply-adds alone at the best plain matmul speed of the run (recording the forward pass, the
        // other ops and copying rows out free): no pass can beat it, so neither can its speed-up
        double floorMs = flops / (matmul * 1e9) * 1000;
        System.out.printf(Locale.ROOT, "| %s | %d | %d | %d | %.1f / %.1f | %.1f | %.1f | %.0f%% | %.0f | **%.1fx** "
                        + "(%.1f-%.1f) | %.1f | %.1fx | %.0f | %.1fx | %.0f | %.1fx | %.0f | %.1e | %.0f | %.0f |%n",
                m.id(), m.config().hiddenSize(), m.config().numLayers(), t, fullMedian, full, gflops, matmul,
                100 * gflops / matmul, perRow, median(ratios), min(ratios), max(ratios), floorMs, perRow / floorMs,
                median(reforward), median(reforwardRatios), batched, batched / fullMedian, lowRank,
                stack.relativeError(), analysis, withOrdinary);
    }

    /** Models wider than this get only the matrix-free case (their full Jacobian and autograd take minutes). */
    static final int LARGE = 1024;
    static final int ROUNDS_LOW_RANK = 5;

    /** The default settings (values to 1e-6, residuals within 1e-3 of sigma_1), 256 MB passes. */
    static LowRank.Settings lowRankSettings(int k) {
        return LowRank.Settings.of(k).withChunkBytes(256L << 20);
    }

    /**
     * Issue 17's matrix-free cases on a small model, float32: top-8 of an 8-token prompt against the full Jacobian
     * (5 interleaved rounds of one full pass and one matrix-free run after 3 warm-ups: the ratio is the median
     * round's), the same with the basis never completed (the iteration alone), and top-8 of a 128-token prompt;
     * relative errors of the top-k values against the exact SVDs of the full stack (EJML, double).
     */
    static List<String> lowRankSmall(LanguageModel m) {
        List<String> rows = new ArrayList<>();
        rows.add(lowRankCase(m, 8, lowRankSettings(8), ""));
        rows.add(lowRankCase(m, 8, lowRankSettings(8).withCompletion(false), " (iteration only)"));
        int t = Math.min(128, m.config().maxPositions());
        rows.add(lowRankCase(m, t, lowRankSettings(8), ""));
        return rows;
    }

    /**
     * A large model: top-4 of an 8-token prompt, once after a 2-token warm-up. The full Jacobian (d transposed passes,
     * minutes) runs only with {@code -Dbench.fullLarge=true} (scripts/bench.sh: LAB_BENCH_FULL_LARGE=1), for the
     * relative errors; otherwise its time is estimated from its FLOPs at the rate the matrix-free passes reached.
     */
    static List<String> lowRankLarge(LanguageModel m) {
        int d = m.config().hiddenSize();
        int t = 8;
        int k = 4;
        Target out = Target.output(m.config().numLayers());
        LowRank.topK(m, ids(m, 2), DataType.FLOAT32, out, lowRankSettings(k)); // the engine's first-use costs
        long[] ids = ids(m, t);
        long t0 = System.nanoTime();
        LowRank.Result r = LowRank.topK(m, ids, DataType.FLOAT32, out, lowRankSettings(k));
        double ms = (System.nanoTime() - t0) / 1e6;
        LowRank.Stats st = r.stats();
        String full;
        String errors;
        if (Boolean.getBoolean("bench.fullLarge")) {
            t0 = System.nanoTime();
            JacobianStack stack = JacobianEngine.full(m, ids, DataType.FLOAT32, out, 256L << 20, x -> { });
            double fullMs = (System.nanoTime() - t0) / 1e6;
            full = String.format(Locale.ROOT, "%.0f (one run)", fullMs);
            errors = String.format(Locale.ROOT, "%.1e / %.1e", perTokenError(stack, r, d, k),
                    combinedError(stack, r, d, k));
        } else {
            // FLOP/s of the matrix-free passes, and the full pass's FLOPs at that rate
            double passFlops = LowRank.flops(m.config(), t, new LowRank.Plan(t, d, st.backward(), st.forward(),
                    false, 0));
            double rate = passFlops / (st.passMs() / 1000);
            double fullFlops = transposeFlops(m.config(), t, DataType.FLOAT32, 256L << 20);
            full = String.format(Locale.ROOT, "not run (~%.0f s at the passes' %.0f GFLOP/s)", fullFlops / rate,
                    rate / 1e9);
            errors = "– (full stack not computed)";
        }
        return List.of(String.format(Locale.ROOT, "| %s | %d | %d | %d | %s | **%.0f** | – | %s | %d | %d | %.0f + %.0f "
                        + "| %.0f / %.0f | %s (%.1e) |",
                m.id(), d, t, k, full, ms, errors, st.rounds(), st.basis(), st.forward(), st.backward(),
                st.passMs(), st.ritzMs(), st.converged(), st.residual()));
    }

    /** Largest relative error of the top-k values of any token against the exact SVDs of the full stack. */
    static double perTokenError(JacobianStack stack, LowRank.Result r, int d, int k) {
        double worst = 0;
        for (int i = 0; i < stack.tokens(); i++) {
            double[] want = singularValues(stack.jacobian()[i], d);
            double[] got = r.perToken().get(i).singularValues();
            for (int j = 0; j < k; j++) {
                worst = Math.max(worst, Math.abs(got[j] - want[j]) / want[j]);
            }
        }
        return worst;
    }

    /** The same for the concatenated matrix (its Gram's eigenvalues, Svd.concatenated). */
    static double combinedError(JacobianStack stack, LowRank.Result r, int d, int k) {
        double[] all = Svd.concatenated(stack.jacobian(), d, k).singularValues();
        double worst = 0;
        for (int j = 0; j < k; j++) {
            worst = Math.max(worst, Math.abs(r.combined().singularValues()[j] - all[j]) / all[j]);
        }
        return worst;
    }

    static String lowRankCase(LanguageModel m, int t, LowRank.Settings s, String note) {
        int d = m.config().hiddenSize();
        int k = s.k();
        long[] ids = ids(m, t);
        Target out = Target.output(m.config().numLayers());
        for (int r = 0; r < 3; r++) {
            JacobianEngine.full(m, ids, DataType.FLOAT32, out, 256L << 20, x -> { });
            LowRank.topK(m, ids, DataType.FLOAT32, out, s);
        }
        double[] fulls = new double[ROUNDS_LOW_RANK];
        double[] lows = new double[ROUNDS_LOW_RANK];
        double[] ratios = new double[ROUNDS_LOW_RANK];
        JacobianStack stack = null;
        LowRank.Result r = null;
        for (int round = 0; round < ROUNDS_LOW_RANK; round++) {
            long t0 = System.nanoTime();
            stack = JacobianEngine.full(m, ids, DataType.FLOAT32, out, 256L << 20, x -> { });
            fulls[round] = (System.nanoTime() - t0) / 1e6;
            t0 = System.nanoTime();
            r = LowRank.topK(m, ids, DataType.FLOAT32, out, s);
            lows[round] = (System.nanoTime() - t0) / 1e6;
            ratios[round] = lows[round] / fulls[round];
        }
        // relative errors against the exact SVDs of the (float32) full stack, in double
        double perToken = perTokenError(stack, r, d, k);
        double combined = combinedError(stack, r, d, k);
        LowRank.Stats st = r.stats();
        return String.format(Locale.ROOT, "| %s%s | %d | %d | %d | %.0f | %.0f | **%.2fx** (%.2f-%.2f) | %.1e / %.1e | %d "
                        + "| %d | %.0f + %.0f | %.0f / %.0f | %s (%.1e) |",
                m.id(), note, d, t, k, median(fulls), median(lows), median(ratios), min(ratios), max(ratios),
                perToken, combined, st.rounds(), st.basis(), st.forward(), st.backward(), st.passMs(), st.ritzMs(),
                st.converged(), st.residual());
    }

    /** All singular values of a d x d row-major matrix, descending (EJML, values only). */
    static double[] singularValues(double[] a, int d) {
        SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(d, d, false, false, true);
        svd.decompose(new DMatrixRMaj(d, d, true, a.clone()));
        double[] s = svd.getSingularValues().clone();
        Arrays.sort(s);
        double[] out = new double[s.length];
        for (int i = 0; i < s.length; i++) {
            out[i] = s[s.length - 1 - i];
        }
        return out;
    }

    /** Token ids spread over the vocabulary (as {@link #run} picks them). */
    static long[] ids(LanguageModel m, int t) {
        long[] ids = new long[t];
        int v = m.config().vocabSize();
        for (int i = 0; i < t; i++) {
            ids[i] = v / 3 + i * 11L % (v / 2);
        }
        return ids;
    }

    static double min(double[] xs) {
        return java.util.Arrays.stream(xs).min().orElse(Double.NaN);
    }

    static double max(double[] xs) {
        return java.util.Arrays.stream(xs).max().orElse(Double.NaN);
    }

    static double median(double[] xs) {
        double[] s = xs.clone();
        java.util.Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    static double matmulGflops(int repeats) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray a = m.randomNormal(new Shape(1024, 1024));
            NDArray b = m.randomNormal(new Shape(1024, 1024));
            a.matMul(b).close();
            double best = Double.MAX_VALUE;
            for (int r = 0; r < repeats; r++) {
                long t0 = System.nanoTime();
                NDArray c = a.matMul(b);
                c.getFloat(0, 0); // force completion
                best = Math.min(best, (System.nanoTime() - t0) / 1e9);
                c.close();
            }
            return 2.0 * 1024 * 1024 * 1024 / best / 1e9;
        }
    }


    /**
     * Floating-point operations of one full transpose pass (d cotangents) for the model output target, as
     * {@link JacobianEngine#full} runs it with {@code chunkBytes}: below the top layer with the per-token MLP matrices
     * when it forms them, else through the two MLP weights; the top layer's MLP and W_o at the last position only.
     */
    static double transposeFlops(ModelConfig c, int t, DataType dtype, long chunkBytes) {
        double d = c.hiddenSize();
        double ff = c.intermediateSize();
        double q = (double) c.numHeads() * c.headDim();
        double kv = (double) c.numKvHeads() * c.headDim();
        double mixing = 2.0 * c.numHeads() * t * c.headDim(); // per cotangent and query position
        double attention = d * t * (2 * d * q + 2 * d * kv + mixing);
        boolean matrices = JacobianEngine.formsMlpMatrices(c, t, dtype, chunkBytes);
        double mlp = matrices ? 2 * t * d * d * ff + 2 * t * d * d * d : d * t * 4 * d * ff;
        double top = d * (4 * d * ff + 2 * d * q + mixing) + d * t * 2 * d * kv;
        return (attention + mlp) * (c.numLayers() - 1) + top;
    }
}
