package lab.steering.jacobian;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import java.util.List;
import java.util.function.DoubleConsumer;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelConfig;
import lab.steering.model.Threads;
import lab.steering.model.Transformer;

/**
 * Top-k singular triplets of every J_i, and of the token-concatenated M = [J_0 ... J_{T-1}], without materialising J
 * (METHOD.md section 3): a block Krylov method with one output-space basis Q shared by all tokens.
 *
 * <p>Why shared: one cotangent pushed through the transposed network gives {@code J_i^T q} for <em>every</em> token i
 * at once, so a basis Q (d x m) costs m transposed passes and yields {@code Z_i = J_i^T Q} for all tokens; a forward
 * product {@code J_i v} serves one token. Each round:
 * <ol>
 *   <li>Rayleigh-Ritz per token from its Gram matrix {@code G_i = Z_i^T Z_i = Q^T J_i J_i^T Q} (m x m, one batched
 *       product on the engine, top eigenpairs in Java by {@link SymmetricTopK}): {@code sigma_j = sqrt(lambda_j)},
 *       {@code u_j = Q a_j}, {@code v_j = Z_i a_j / sigma_j}. Then {@code J_i^T u_j = sigma_j v_j} holds exactly, and
 *       the combined matrix's Ritz pairs come from {@code sum_i G_i} for free.</li>
 *   <li>Residuals {@code r_j = J_i v_j - sigma_j u_j} (orthogonal to Q), by one batch of forward products of the
 *       frozen network on columns ({@link FrozenNetwork#applyColumns}), each input at its own position only and
 *       positions before it left out. The stated tolerance is on the values: {@code J J^T} has the Ritz pair
 *       {@code (sigma_j^2, u_j)} with residual {@code sigma_j r_j}, so (Kato-Temple) sigma_j's relative error is at most
 *       {@code ||r_j||^2 / (2 delta_j)}, delta_j the distance of sigma_j^2 to the other Ritz values squared. A triplet
 *       has converged when that bound is within {@link Settings#tolerance} (default {@value #TOLERANCE}) and its
 *       residual within {@link Settings#residualTolerance} of sigma_1 (default {@value #RESIDUAL_TOLERANCE}, the
 *       vectors' accuracy), or its residual alone within the tolerance (an exact triplet of a matrix that close to
 *       J_i). The combined matrix the same way on {@code M M^T}.</li>
 *   <li>The unconverged residuals, orthonormalised against Q, are the next block (block Lanczos: the residual is the
 *       next Krylov direction); one transposed pass appends their Z. A converged token stops adding forward products.</li>
 * </ol>
 * The basis only grows (its Ritz values only rise toward the true ones), until it would pass
 * {@link Settings#basisBytes}: then it restarts from the current top Ritz vectors of every token. When completing Q to
 * all d directions costs no more transposed passes than about three per unconverged triplet (what the rounds still
 * need), it is completed: the result is then exact, and the cost is that of one full Jacobian (a prompt with
 * T (k + 2) + k + 2 >= d / 3 does so at once: a per-token method needs about min(d, T k) products anyway). Tokens
 * whose bases would not fit side by side are solved in groups, the combined spectrum then on its own.
 *
 * <p>Frobenius norms: exact once the basis is complete; otherwise {@code ||J_i||_F^2} is estimated as
 * {@code (d / m0) ||Q_0^T J_i||_F^2} from the Haar-random first block Q_0 (m0 columns), and never below the part the
 * final basis captures ({@code exact = false}).
 */
public final class LowRank {

    /** Default tolerance: relative accuracy of every top-k singular value (by the bound in {@link Settings}). */
    public static final double TOLERANCE = 1e-6;
    /** Default bound on the relative residual ||J_i v - sigma u|| / sigma_1 that goes with it. */
    public static final double RESIDUAL_TOLERANCE = 1e-3;
    /** Default bound on the stored Z = J^T Q of a group (and the budget of the analysis' estimate). */
    public static final long BASIS_BYTES = 256L << 20;

    private LowRank() {
    }

    /**
     * @param perToken       top-k of each J_i
     * @param combined       top-k of the concatenated matrix (left vectors only)
     * @param reconstruction sum_i J_i x_i + c, by forward passes of the frozen network (exact, no J needed)
     * @param output         y as the model computed it
     * @param constant       c, the frozen network at x = 0 (zero for families without biases)
     * @param stats          what the iteration did
     */
    public record Result(List<Spectrum> perToken, Spectrum combined, double[] reconstruction, double[] output,
                         double[] constant, Stats stats) {
    }

    /**
     * @param rounds    Rayleigh-Ritz rounds (of the largest group)
     * @param basis     largest basis size reached (d: complete, the results are exact)
     * @param forward   forward products J_i v, counted in passes over all T positions (a product whose input starts at
     *                  position i counts (T - i) / T)
     * @param backward  cotangents pushed through the transposed network (each a pass over all T positions)
     * @param residual  largest relative residual of a reported triplet at its last check (0 for a complete basis)
     * @param converged every reported triplet within the tolerance
     * @param restarts  basis restarts
     * @param groups    token groups (1 unless the bases did not fit side by side)
     * @param forwardMs  wall time of the forward passes
     * @param backwardMs wall time of the transposed passes
     * @param ritzMs    wall time of the Rayleigh-Ritz steps (Gram products, eigenpairs)
     */
    public record Stats(int rounds, int basis, double forward, double backward, double residual, boolean converged,
                        int restarts, int groups, double forwardMs, double backwardMs, double ritzMs) {
        public double passMs() {
            return forwardMs + backwardMs;
        }
    }

    /**
     * Settings.
     *
     * @param k             triplets wanted per token and for the combined matrix
     * @param extra         Ritz pairs beyond k expanded each round (a wider gap to converge against)
     * @param tolerance     relative accuracy wanted of every top-k value (the bound in the class comment)
     * @param residualTolerance the largest relative residual ||J_i v - sigma u|| / sigma_1 accepted with it (the
     *                      vectors' accuracy: about this over the relative gap)
     * @param maxRounds     cap on Rayleigh-Ritz rounds (a complete basis always ends it earlier where it fits)
     * @param seed          of the random first block
     * @param chunkBytes    bound on one pass's largest intermediate (the batch is chunked to fit)
     * @param basisBytes    bound on the stored Z = J^T Q of a group (double), with as much again for its updates
     * @param complete      complete the basis when that is cheaper than iterating (off: the iteration alone, for
     *                      measuring it)
     */
    public record Settings(int k, int extra, double tolerance, double residualTolerance, int maxRounds, long seed,
                           long chunkBytes, long basisBytes, boolean complete) {
        public static Settings of(int k) {
            return new Settings(k, 2, TOLERANCE, RESIDUAL_TOLERANCE, 40, 1234, 64L << 20, BASIS_BYTES, true);
        }

        /** Values to {@code tol}, and residuals no larger than {@code residual} (relative to sigma_1). */
        public Settings withTolerance(double tol, double residual) {
            return new Settings(k, extra, tol, residual, maxRounds, seed, chunkBytes, basisBytes, complete);
        }

        public Settings withChunkBytes(long bytes) {
            return new Settings(k, extra, tolerance, residualTolerance, maxRounds, seed, bytes, basisBytes, complete);
        }

        public Settings withBasisBytes(long bytes) {
            return new Settings(k, extra, tolerance, residualTolerance, maxRounds, seed, chunkBytes, bytes, complete);
        }

        public Settings withExtra(int e) {
            return new Settings(k, e, tolerance, residualTolerance, maxRounds, seed, chunkBytes, basisBytes, complete);
        }

        public Settings withCompletion(boolean on) {
            return new Settings(k, extra, tolerance, residualTolerance, maxRounds, seed, chunkBytes, basisBytes, on);
        }

        /**
         * Whether a Ritz triplet has converged: its residual within {@code tolerance} of sigma_1 outright, or its value
         * within {@code tolerance} by {@code valueBound} with the residual within {@code residualTolerance}.
         */
        boolean converged(double valueBound, double rho) {
            return rho <= tolerance || (valueBound <= tolerance && rho <= residualTolerance);
        }

        /**
         * Whether completing a basis of {@code size} to all d directions (d - size transposed passes, then exact) is
         * cheaper than going on with {@code active} unconverged triplets: about 3 passes each (a forward product and
         * a transposed pass this round, and more in the rounds after it). Only where a complete basis fits.
         */
        boolean completes(int d, int basisMax, int size, int active) {
            return complete && basisMax == d && d - size <= 3L * active;
        }

        /** Columns of the random first block. */
        int firstBlock(int d) {
            return Math.min(d, k + extra + 8);
        }
    }

    /** As {@link #topK(LanguageModel, long[], DataType, Target, Settings, DoubleConsumer)} without progress. */
    public static Result topK(LanguageModel model, long[] ids, DataType dtype, Target target, Settings s) {
        return topK(model, ids, dtype, target, s, f -> { });
    }

    /**
     * @param progress gets the fraction of the planned work done (0..1; {@link #plan}'s expectation, so it may stop
     *                 short of 1 when the iteration converges early); may throw (e.g. a CancellationException) to stop;
     *                 every array is freed on the way out
     */
    public static Result topK(LanguageModel model, long[] ids, DataType dtype, Target target, Settings s,
                              DoubleConsumer progress) {
        Threads.full(); // the engine's threads, whatever a decoding step left here
        Transformer tf = model.transformer(dtype);
        int d = tf.config().hiddenSize();
        int t = ids.length;
        int k = Math.min(s.k(), d);
        Plan plan = plan(tf.config(), t, s);
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            FrozenNetwork f = FrozenNetwork.record(tf, m, ids);
            double[] output = f.targetOutput(target).toType(DataType.FLOAT64, false).toDoubleArray();
            double[] constant = f.constant(target);
            double[] recon = f.apply(target, f.targetInput(target)).toType(DataType.FLOAT64, false).toDoubleArray();
            for (int r = 0; r < d; r++) {
                recon[r] += constant[r];
            }
            SharedBasis.Work work = new SharedBasis.Work(plan.passes(), progress);
            Spectrum[] perToken = new Spectrum[t];
            Spectrum combined = null;
            int rounds = 0;
            int basis = 0;
            int restarts = 0;
            double residual = 0;
            boolean converged = true;
            int size = plan.groupSize();
            for (int g0 = 0; g0 < t; g0 += size) {
                int g1 = Math.min(t, g0 + size);
                boolean withCombined = g0 == 0 && g1 == t;
                SharedBasis solver = new SharedBasis(f, target, m, dtype, s, g0, g1, k, true, withCombined, work);
                solver.run();
                System.arraycopy(solver.perToken, 0, perToken, g0, g1 - g0);
                if (withCombined) {
                    combined = solver.combined;
                }
                rounds = Math.max(rounds, solver.rounds);
                basis = Math.max(basis, solver.basisMaxReached);
                restarts += solver.restarts;
                residual = Math.max(residual, solver.residual);
                converged &= solver.converged;
            }
            if (combined == null) { // groups: the concatenated matrix on its own, over all tokens
                SharedBasis solver = new SharedBasis(f, target, m, dtype, s, 0, t, k, false, true, work);
                solver.run();
                combined = solver.combined;
                rounds = Math.max(rounds, solver.rounds);
                restarts += solver.restarts;
                residual = Math.max(residual, solver.residual);
                converged &= solver.converged;
            }
            progress.accept(1);
            Stats stats = new Stats(rounds, basis, work.forward, work.backward, residual, converged, restarts,
                    (t + size - 1) / size, work.forwardNanos / 1e6, work.backwardNanos / 1e6, work.ritzNanos / 1e6);
            return new Result(List.of(perToken), combined, recon, output, constant, stats);
        }
    }

    // ---------------------------------------------------------------- plan (also the analysis' cost estimate)

    /**
     * The expected work of {@link #topK}: token groups, the largest basis a group may hold, and the transposed and
     * forward passes (in passes of one vector over all T positions). Expected, not bounded: {@value #ASSUMED_ROUNDS}
     * expansion rounds are assumed where the basis is not completed at once, and a complete basis never costs more
     * than d transposed passes plus the rounds before it. Progress reports extend it when a case runs longer.
     *
     * @param groupSize      tokens per group
     * @param basisMax       largest basis of a group (d: it may be completed)
     * @param backward       expected transposed passes
     * @param forward        expected forward passes (causal: an input at position i costs (T - i) / T)
     * @param exhaustsAtOnce the first block is the complete basis (T k large against d): exact, one full pass
     * @param gramFlops      expected Rayleigh-Ritz work (Gram products and tridiagonalisations)
     */
    public record Plan(int groupSize, int basisMax, double backward, double forward, boolean exhaustsAtOnce,
                       double gramFlops) {
        double passes() {
            return backward + forward;
        }
    }

    /**
     * Floating-point operations of a plan: a pass of one vector over T positions costs {@code 2 T P} (P the
     * non-embedding parameters) plus the attention mixing {@code 2 L heads headDim T^2}; then the Rayleigh-Ritz work.
     */
    public static double flops(ModelConfig c, int t, Plan p) {
        double nonEmbedding = c.parameterCount() - (double) c.vocabSize() * c.hiddenSize()
                * (c.tieWordEmbeddings() ? 1 : 2);
        double pass = 2.0 * t * nonEmbedding + 2.0 * c.numLayers() * c.numHeads() * c.headDim() * (double) t * t;
        return p.passes() * pass + p.gramFlops();
    }

    /**
     * Expansion rounds assumed by the plan where the basis is not completed at once (measured at the default tolerances:
     * 4 on the default model with completion off, 9 on the random Llama 3.2 1B-shaped checkpoint, whose top singular
     * values lie within a few percent of each other; docs/benchmarks.md).
     */
    static final int ASSUMED_ROUNDS = 6;

    public static Plan plan(ModelConfig c, int t, Settings s) {
        int d = c.hiddenSize();
        int k = Math.min(s.k(), d);
        int kk = Math.min(d, k + s.extra());
        int size = t;
        int basisMax = basisMax(d, size, s.basisBytes());
        // a group must hold its tokens' kept Ritz vectors with room for a round beside them
        while (size > 1 && basisMax < Math.min(d, 3 * (size * kk + kk))) {
            size = (size + 1) / 2;
            basisMax = basisMax(d, size, s.basisBytes());
        }
        int groups = (t + size - 1) / size;
        double backward = 0;
        double forward = 0;
        double gram = 0;
        boolean atOnce = false;
        for (int g = 0; g < groups; g++) {
            int n = Math.min(size, t - g * size);
            int from = g * size;
            int perRound = n * kk + (groups == 1 ? kk : 0);
            if (s.completes(d, basisMax, 0, perRound)) { // as Solver.run: the complete basis at once
                atOnce = true;
                backward += d;
                gram += gramFlops(n, d, d, 1, kk);
                continue;
            }
            int m = s.firstBlock(d);
            backward += m;
            double positions = (t - from - (n - 1) / 2.0) / t; // inputs start at their own position
            int rounds = 1;
            for (int r = 0; r < ASSUMED_ROUNDS; r++) {
                if (s.completes(d, basisMax, m, perRound)) {
                    backward += d - m;
                    m = d;
                    rounds++;
                    break;
                }
                forward += perRound * positions;
                int add = Math.min(perRound, basisMax - m);
                backward += add;
                m = Math.min(basisMax, m + add);
                rounds++;
            }
            gram += gramFlops(n, d, m, rounds, kk);
        }
        if (groups > 1) { // the combined matrix on its own: a block of kk per round
            int m = s.firstBlock(d) + ASSUMED_ROUNDS * kk;
            backward += m;
            forward += ASSUMED_ROUNDS * kk;
            gram += gramFlops(t, d, m, ASSUMED_ROUNDS + 1, kk);
        }
        return new Plan(size, basisMax, backward, forward, atOnce && groups == 1, gram);
    }

    /** Gram products (T m^2 d multiply-adds) and tridiagonalisations (4/3 m^3 each) of {@code rounds} rounds at m. */
    private static double gramFlops(int tokens, int d, int m, int rounds, int kk) {
        return rounds * (2.0 * tokens * m * (double) m * d + tokens * (4.0 / 3) * Math.pow(m, 3)
                + 4.0 * tokens * d * (double) m * kk);
    }

    static int basisMax(int d, int tokens, long bytes) {
        long perVector = 2L * tokens * d * 8; // Z in double, and as much again while it is updated
        return (int) Math.max(1, Math.min(d, bytes / Math.max(1, perVector)));
    }
}
