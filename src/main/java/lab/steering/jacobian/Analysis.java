package lab.steering.jacobian;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CancellationException;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelConfig;
import lab.steering.model.Threads;

/**
 * The full detached-Jacobian analysis of one prompt (METHOD.md sections 2 and 4), by the full-matrix method:
 * the output Jacobian stack, its reconstruction error next to the ordinary Jacobian's, per-token and combined
 * SVDs with stable ranks, decoded singular vectors, the model's and the linear system's predictions, and a layer
 * sweep. Plain arrays and records in, plain records out (they serialise as the API's JSON).
 *
 * <p>Long-running: {@link Progress#update} is called at every stage and after every transpose chunk; throwing a
 * {@link CancellationException} from it abandons the analysis (every tensor is freed on the way out).
 */
public final class Analysis {

    /** Singular values per swept layer (METHOD.md section 4: 8 in layer sweeps). */
    public static final int SWEEP_K = 8;
    /** How many of the top singular vectors are decoded (METHOD.md: "the top 1 to 8 are decoded"). */
    public static final int DECODE_MAX = 8;
    /** Tokens listed per decoded vector. */
    public static final int TOKENS_PER_VECTOR = 8;

    private Analysis() {
    }

    /**
     * What to compute.
     *
     * @param method     FULL or LOW_RANK
     * @param dtype      precision of every op: FLOAT32 or FLOAT64
     * @param topK       singular values per token, 1..d
     * @param layers     sweep layers, each 1..L (empty: no sweep)
     * @param mode       sweep mode
     * @param component  sweep component
     * @param bothSigns  also decode the opposite sign of every vector
     * @param chunkBytes bound on the transpose pass's largest intermediate
     * @param ordinary   also compute the ordinary Jacobian's reconstruction (the full method only; it costs about
     *                   three detached passes, so callers that only want spectra turn it off)
     */
    public record Options(Method method, DataType dtype, int topK, int[] layers, Target.Mode mode,
                          Target.Component component, boolean bothSigns, long chunkBytes, boolean ordinary) {

        /** With the ordinary Jacobian's contrast (the full method). */
        public Options(Method method, DataType dtype, int topK, int[] layers, Target.Mode mode,
                       Target.Component component, boolean bothSigns, long chunkBytes) {
            this(method, dtype, topK, layers, mode, component, bothSigns, chunkBytes, true);
        }

        /** The same options without the ordinary Jacobian. */
        public Options withoutOrdinary() {
            return new Options(method, dtype, topK, layers, mode, component, bothSigns, chunkBytes, false);
        }

        boolean computesOrdinary() {
            return method == Method.FULL && ordinary;
        }
    }

    /**
     * FULL: materialise every J_i (the transpose pass), exact SVDs. LOW_RANK: {@link LowRank}'s matrix-free top-k
     * (a block Krylov method on J v and J^T u with a basis shared by all tokens; the API calls it "lanczos"), for
     * prompts whose stacks are too large or slow to make; Frobenius norms and stable ranks are then estimates unless
     * its basis was completed, and the ordinary Jacobian (as large as the full stack) is not computed.
     */
    public enum Method {
        FULL("full"), LOW_RANK("lanczos");

        private final String apiName;

        Method(String apiName) {
            this.apiName = apiName;
        }

        public String apiName() {
            return apiName;
        }
    }

    /** Progress report and cancellation point: {@code fraction} in 0..1; may throw {@link CancellationException}. */
    @FunctionalInterface
    public interface Progress {
        Progress NONE = (stage, fraction) -> { };

        void update(String stage, double fraction);
    }

    // ---------------------------------------------------------------- result (the JSON of POST /api/jacobian)

    public record TokenInfo(long id, String text) {
    }

    /** The model's own next token (argmax lm_head(y)) and the linear system's (argmax lm_head(sum_i J_i x_i + c)). */
    public record Prediction(TokenInfo model, TokenInfo linear, boolean agree) {
    }

    /**
     * ordinaryRelError is null with the low-rank method or without {@link Options#ordinary} (the ordinary Jacobian is
     * not computed). The vectors, for plots: {@code output} is y, {@code linear} is sum_i J_i x_i + c with the detached Jacobian, {@code ordinary}
     * the same sum with the ordinary Jacobian (null then too).
     */
    public record Reconstruction(double detachedRelError, Double ordinaryRelError, double constantNorm,
                                 double[] output, double[] linear, double[] ordinary) {
    }

    /**
     * Stable ranks: of the token-concatenated output Jacobian, and of each J_i; {@code exact} is false with the
     * low-rank method, whose Frobenius norms are randomized estimates.
     */
    public record StableRanks(double combined, double[] perToken, boolean exact) {
    }

    /**
     * One decoded singular vector: sigma, its top tokens, and with bothSigns those of the opposite sign;
     * {@code words} / {@code negativeWords}: the same restricted to whole words (what the pages show by default).
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Direction(double sigma, List<TokenDecoder.Scored> tokens, List<TokenDecoder.Scored> negative,
                            List<TokenDecoder.Scored> words, List<TokenDecoder.Scored> negativeWords) {
    }

    /** The SVD of one token's J_i: u decoded by logit, v by cosine to the input embeddings. */
    public record TokenSpectrum(int position, long id, String token, double[] singularValues, double stableRank,
                                double frobeniusSq, List<Direction> u, List<Direction> v) {
    }

    /**
     * One swept layer: the concatenated Jacobian of the target (its stable rank, top singular values and decoded
     * left vectors), the reconstruction error of that target, the logit lens of its own output y_l, and one
     * {@link Cell} per prompt token (the layer-by-token view).
     */
    public record Layer(int layer, String mode, String component, double relError, double stableRank,
                        double[] singularValues, List<TokenDecoder.Scored> logitLens,
                        List<TokenDecoder.Scored> logitLensWords, List<Direction> u, List<Cell> cells) {
    }

    /**
     * One cell of the layer-by-token view: the swept target's Jacobian with respect to one input token, J_{l,i}
     * (d x d). {@code stableRank} = ||J_{l,i}||_F^2 / sigma_1^2 (an estimate with the low-rank method);
     * {@code top} is the top token by logit of its first left singular vector u_1 (signed like every decoded vector:
     * {@code <u_1, sum_i J_i x_i> > 0} with the final output's reconstruction), {@code negative} that of -u_1 (only
     * with bothSigns).
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Cell(int position, double stableRank, double sigma, TokenDecoder.Scored top,
                       TokenDecoder.Scored negative, TokenDecoder.Scored topWord, TokenDecoder.Scored negativeWord) {
    }

    public record Timings(double recordMs, double jacobianMs, double svdMs, double decodeMs, double ordinaryMs,
                          double sweepMs, double totalMs) {
    }

    /**
     * Per-stage wall times. With the low-rank method "jacobian" is the whole matrix-free computation (recording and
     * the subspace iterations, which contain the SVDs), so "record" and "svd" are 0.
     */
    public record Result(String model, String dtype, String method, int topK, List<TokenInfo> tokens,
                         Prediction prediction, Reconstruction reconstruction, StableRanks stableRank,
                         List<TokenSpectrum> perToken, List<Layer> layers, Timings timings) {
    }

    // ---------------------------------------------------------------- defaults and cost

    /** METHOD.md section 4: l in range(1, L, max(1, L // 8)), plus L (the model output). */
    public static int[] defaultLayers(int numLayers) {
        int step = Math.max(1, numLayers / 8);
        List<Integer> out = new ArrayList<>();
        for (int l = 1; l < numLayers; l += step) {
            out.add(l);
        }
        out.add(numLayers);
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * A rough cost: peak bytes held by one request (the Jacobian stacks as double arrays plus working memory) and
     * floating-point operations (METHOD.md section 3: ~2 d T P per full Jacobian, P the non-embedding parameters).
     * Not counted: the model's weights, and its float64 copy made once on first float64 use.
     *
     * @param export true for the export path (one stack, then its file), false for the full analysis
     */
    public record Estimate(long bytes, double flops) {
        public double megabytes() {
            return bytes / (1024.0 * 1024.0);
        }
    }

    /**
     * Whether the matrix-free method would complete its basis at once for the output (T (k + 2) + k + 2 >= d / 3 with
     * room for it): it then computes the whole stack, exactly, as the full method does.
     */
    public static boolean lowRankCompletesAtOnce(ModelConfig c, int tokens, Options o) {
        return LowRank.plan(c, tokens, lowRankSettings(o, Math.max(o.topK(), SWEEP_K))).exhaustsAtOnce();
    }

    /**
     * LowRank's settings for an analysis: k values and the options' pass chunk; its default tolerances (every top-k
     * value to 1e-6 relative, residuals within 1e-3 of sigma_1), in float32 as in float64: the bound on a value's
     * error is the residual squared over the gap, which float32's ~1e-7 rounding of the passes does not limit.
     */
    static LowRank.Settings lowRankSettings(Options o, int k) {
        return LowRank.Settings.of(k).withChunkBytes(o.chunkBytes());
    }

    public static Estimate estimate(ModelConfig c, int tokens, DataType dtype, Options o, boolean export) {
        long t = tokens;
        long d = c.hiddenSize();
        long b = dtype.getNumOfBytes();
        long layers = c.numLayers();
        long widest = Math.max(Math.max(c.intermediateSize(), d), (long) c.numHeads() * c.headDim());
        long stack = t * d * d * 8;                                   // one JacobianStack (double)
        long recorded = layers * ((long) c.numHeads() * t * t + t * (6 * d + 2L * c.intermediateSize())) * b;
        long nonEmbedding = c.parameterCount() - (long) c.vocabSize() * d * (c.tieWordEmbeddings() ? 1 : 2) - d;
        double attention = 4.0 * layers * c.numHeads() * c.headDim() * t * t; // A v and its transpose, per row
        double oneJacobian = 2.0 * d * t * nonEmbedding + d * attention;
        double[] sweepShare = new double[o.layers().length];
        for (int i = 0; i < sweepShare.length; i++) {
            int l = o.layers()[i];
            boolean output = l == layers && o.mode() == Target.Mode.CUMULATIVE && o.component() == Target.Component.LAYER;
            sweepShare[i] = output ? 0 : o.mode() == Target.Mode.CUMULATIVE ? (double) l / layers : 1.0 / layers;
        }
        if (o.method() == Method.LOW_RANK && !export) {
            // LowRank's plan: the expected passes and Rayleigh-Ritz work of the output target (k = max(topK, 8)),
            // each swept target its share of the network's passes
            LowRank.Settings s = lowRankSettings(o, Math.max(o.topK(), SWEEP_K));
            LowRank.Plan plan = LowRank.plan(c, tokens, s);
            double one = LowRank.flops(c, tokens, plan);
            double flops = one;
            for (double share : sweepShare) {
                flops += share == 0 ? 0 : share * (one - plan.gramFlops()) + plan.gramFlops();
            }
            long basis = 2L * plan.groupSize() * d * plan.basisMax() * 8;             // Z and its update (double)
            long gram = (long) plan.groupSize() * plan.basisMax() * plan.basisMax() * 8 * 2; // Grams, engine and Java
            long passes = Math.min(o.chunkBytes(), t * widest * b * 6 * d);          // one pass's intermediates
            long bytes = recorded + basis + gram + passes + t * (long) s.k() * 2 * d * 8;
            return new Estimate(bytes, flops);
        }
        long chunk = Math.min(o.chunkBytes(), t * widest * b * 6 * d); // JacobianEngine.chunkSize's bound
        if (export) {
            return new Estimate(stack + recorded + chunk + 2 * t * d * d * b, oneJacobian);
        }
        // the ordinary Jacobian's autograd tape for all d rows (a conservative bound: it now runs in row batches)
        long activations = d * t * layers * (8 * d + 4 * widest + 2L * c.numHeads() * t) * b;
        long ordinary = o.computesOrdinary() ? 2 * stack + t * d * d * b + activations : 0; // stack, gradient, tape
        long detached = stack + recorded + chunk + t * o.topK() * 2 * d * 8;
        double flops = oneJacobian + (o.computesOrdinary() ? 3 * oneJacobian : 0) // detached, ordinary (fwd + bwd)
                + t * 20.0 * d * d * d + 12.0 * d * d * d + 2.0 * t * d * d * d; // per-token SVDs, Gram, eig
        for (double share : sweepShare) {
            // the concatenated Gram and its eig, then one Gram and eig per token (the layer-by-token cells)
            flops += share * oneJacobian + 2.0 * t * d * d * d + 12.0 * d * d * d
                    + (share == 0 ? 0 : t * 14.0 * d * d * d);
        }
        return new Estimate(Math.max(detached, Math.max(ordinary, stack + recorded + chunk)), flops);
    }

    // ---------------------------------------------------------------- the analysis

    public static Result run(LanguageModel model, long[] ids, Options o, TokenDecoder decoder, Progress progress) {
        Threads.full(); // the engine's threads, whatever a decoding step left here
        long t0 = System.nanoTime();
        ModelConfig c = model.config();
        int d = c.hiddenSize();
        int numLayers = c.numLayers();
        int t = ids.length;
        int topK = Math.min(o.topK(), d);
        int decodeK = Math.min(topK, DECODE_MAX);
        int sweepK = Math.min(SWEEP_K, d);
        Target out = Target.output(numLayers);

        // progress in units of transposed rows: the output stack d, the ordinary Jacobian ~2d (full method only),
        // each swept layer d times the share of the network it crosses
        double ordinaryUnits = o.computesOrdinary() ? 2.0 * d : 0;
        double[] sweepUnits = new double[o.layers().length];
        double total = d + ordinaryUnits;
        for (int i = 0; i < sweepUnits.length; i++) {
            Target lt = new Target(o.layers()[i], o.mode(), o.component());
            sweepUnits[i] = lt.equals(out) ? 0
                    : d * (o.mode() == Target.Mode.CUMULATIVE ? (double) lt.layer() / numLayers : 1.0 / numLayers);
            total += sweepUnits[i];
        }
        final double totalUnits = total;

        // 1-2. the output's linear system and its spectra: full stack + exact SVDs, or matrix-free top-k
        Core core = o.method() == Method.FULL
                ? fullCore(model, ids, o, out, topK, sweepK, progress, totalUnits)
                : lowRankCore(model, ids, o, out, topK, sweepK, progress, totalUnits, 0, d);
        double[] y = core.output();
        double[] linear = core.linear(); // sum_i J_i x_i + c: also the sign reference of every decoded vector
        double detachedErr = JacobianStack.relativeError(y, linear);
        double constantNorm = JacobianStack.norm(core.constant());
        long tRecord = core.recorded();
        Spectrum[] perToken = new Spectrum[t];
        for (int i = 0; i < t; i++) {
            perToken[i] = Svd.orient(core.perToken()[i], linear);
        }
        Spectrum combined = Svd.orient(core.combined(), linear);
        long tJacobian = core.jacobianDone();
        long tSvd = System.nanoTime();

        // 3. decoding: y and the reconstruction (predictions), then every token's u by logit and v by cosine
        progress.update("decode", d / totalUnits);
        double[][] logitRows = new double[2 + t * decodeK][];
        double[][] cosineRows = new double[t * decodeK][];
        logitRows[0] = y;
        logitRows[1] = linear;
        for (int i = 0; i < t; i++) {
            for (int k = 0; k < decodeK; k++) {
                logitRows[2 + i * decodeK + k] = perToken[i].u()[k];
                cosineRows[i * decodeK + k] = perToken[i].v()[k];
            }
        }
        List<TokenDecoder.Ranked> byLogit = decoder.byLogit(logitRows, TOKENS_PER_VECTOR, o.bothSigns(), o.dtype());
        List<TokenDecoder.Ranked> byCosine = decoder.byCosine(cosineRows, TOKENS_PER_VECTOR, o.bothSigns());
        TokenDecoder.Scored own = byLogit.get(0).positive().get(0);
        TokenDecoder.Scored lin = byLogit.get(1).positive().get(0);
        Prediction prediction = new Prediction(new TokenInfo(own.id(), own.token()),
                new TokenInfo(lin.id(), lin.token()), own.id() == lin.id());
        List<TokenInfo> tokens = new ArrayList<>();
        String[] pieces = model.tokenizer().pieces(ids);
        for (int i = 0; i < t; i++) {
            tokens.add(new TokenInfo(ids[i], pieces[i]));
        }
        List<TokenSpectrum> spectra = new ArrayList<>();
        double[] perTokenRank = new double[t];
        for (int i = 0; i < t; i++) {
            Spectrum s = perToken[i];
            perTokenRank[i] = s.stableRank();
            spectra.add(new TokenSpectrum(i, ids[i], pieces[i], s.singularValues(), s.stableRank(), s.frobeniusSq(),
                    directions(s, byLogit.subList(2 + i * decodeK, 2 + (i + 1) * decodeK)),
                    directions(s, byCosine.subList(i * decodeK, (i + 1) * decodeK))));
        }
        long tDecode = System.nanoTime();
        core = null; // the output stack is no longer needed: free it before the ordinary Jacobian takes as much again

        // 4. the ordinary (not frozen) Jacobian: the paper's contrast (full method only: it is a full stack itself)
        Double ordinaryErr = null;
        double[] ordinaryLinear = null;
        if (o.computesOrdinary()) {
            progress.update("ordinary", d / totalUnits);
            JacobianStack ordinary = JacobianEngine.ordinary(model, ids, o.dtype(), o.chunkBytes());
            ordinaryLinear = ordinary.reconstruct();
            ordinaryErr = JacobianStack.relativeError(ordinary.output(), ordinaryLinear);
        }
        long tOrdinary = System.nanoTime();

        // 5. layer sweep: the concatenated SVD per target, signs by the final output's reconstruction
        double done = d + ordinaryUnits;
        List<Spectrum> sweepSpectra = new ArrayList<>();
        List<double[]> sweepOutputs = new ArrayList<>();
        double[] sweepErr = new double[o.layers().length];
        List<Spectrum[]> sweepCells = new ArrayList<>(); // per swept layer, the top triplet of each J_{l,i}
        for (int li = 0; li < o.layers().length; li++) {
            Target lt = new Target(o.layers()[li], o.mode(), o.component());
            String stage = "sweep layer " + lt.layer() + " (" + (li + 1) + "/" + o.layers().length + ")";
            progress.update(stage, done / totalUnits);
            if (lt.equals(out)) {
                sweepSpectra.add(combined);
                sweepOutputs.add(y);
                sweepErr[li] = detachedErr;
                sweepCells.add(perToken); // the output's per-token spectra: already oriented
                continue;
            }
            double base = done;
            double share = sweepUnits[li] / d;
            if (o.method() == Method.FULL) {
                JacobianStack lj = JacobianEngine.full(model, ids, o.dtype(), lt, o.chunkBytes(),
                        rows -> progress.update(stage, (base + rows * share) / totalUnits));
                // the layer's combined spectrum and each token's top-1, side by side
                Spectrum[] layerSpectra = Svd.concatenatedEachAndAll(lj.jacobian(), d, 1, sweepK);
                sweepSpectra.add(Svd.orient(layerSpectra[t], linear));
                sweepOutputs.add(lj.output());
                sweepErr[li] = lj.relativeError();
                Spectrum[] cells = new Spectrum[t];
                for (int i = 0; i < t; i++) {
                    cells[i] = Svd.orient(layerSpectra[i], linear);
                }
                sweepCells.add(cells);
            } else {
                Core lc = lowRankCore(model, ids, o, lt, sweepK, sweepK, (st, f) -> progress.update(stage, f),
                        totalUnits, base, sweepUnits[li]);
                sweepSpectra.add(Svd.orient(lc.combined(), linear));
                sweepOutputs.add(lc.output());
                sweepErr[li] = JacobianStack.relativeError(lc.output(), lc.linear());
                Spectrum[] cells = new Spectrum[t];
                for (int i = 0; i < t; i++) {
                    cells[i] = Svd.orient(lc.perToken()[i], linear);
                }
                sweepCells.add(cells);
            }
            done += sweepUnits[li];
        }
        List<Layer> layers = new ArrayList<>();
        if (o.layers().length > 0) {
            progress.update("sweep decode", done / totalUnits);
            int per = 1 + decodeK;
            int n = o.layers().length;
            double[][] rows = new double[n * per][];
            double[][] cellRows = new double[n * t][]; // u_1 of every J_{l,i}
            for (int li = 0; li < n; li++) {
                rows[li * per] = sweepOutputs.get(li);
                for (int k = 0; k < decodeK; k++) {
                    rows[li * per + 1 + k] = sweepSpectra.get(li).u()[k];
                }
                for (int i = 0; i < t; i++) {
                    cellRows[li * t + i] = sweepCells.get(li)[i].u()[0];
                }
            }
            List<TokenDecoder.Ranked> ranked = decoder.byLogit(rows, TOKENS_PER_VECTOR, o.bothSigns(), o.dtype());
            List<TokenDecoder.Ranked> cellRanked = decoder.byLogit(cellRows, 1, o.bothSigns(), o.dtype());
            for (int li = 0; li < n; li++) {
                Spectrum s = sweepSpectra.get(li);
                List<Cell> cells = new ArrayList<>(t);
                for (int i = 0; i < t; i++) {
                    Spectrum cs = sweepCells.get(li)[i];
                    TokenDecoder.Ranked r = cellRanked.get(li * t + i);
                    cells.add(new Cell(i, cs.stableRank(), cs.singularValues()[0], r.positive().get(0),
                            r.negative() == null ? null : r.negative().get(0),
                            r.words().isEmpty() ? null : r.words().get(0),
                            r.negativeWords() == null || r.negativeWords().isEmpty() ? null
                                    : r.negativeWords().get(0)));
                }
                layers.add(new Layer(o.layers()[li], lower(o.mode()), lower(o.component()), sweepErr[li],
                        s.stableRank(), s.singularValues(), ranked.get(li * per).positive(),
                        ranked.get(li * per).words(),
                        directions(s, ranked.subList(li * per + 1, (li + 1) * per)), List.copyOf(cells)));
            }
        }
        long tSweep = System.nanoTime();
        progress.update("done", 1);

        Timings timings = new Timings(ms(t0, tRecord), ms(tRecord, tJacobian), ms(tJacobian, tSvd), ms(tSvd, tDecode),
                ms(tDecode, tOrdinary), ms(tOrdinary, tSweep), ms(t0, tSweep));
        return new Result(model.id(), o.dtype() == DataType.FLOAT64 ? "float64" : "float32", o.method().apiName(),
                topK, tokens, prediction, new Reconstruction(detachedErr, ordinaryErr, constantNorm, y,
                linear, ordinaryLinear),
                new StableRanks(combined.stableRank(), perTokenRank, o.method() == Method.FULL), spectra, layers,
                timings);
    }

    /**
     * The output's linear system as the stages after it need it: y, sum_i J_i x_i + c, the per-token top-k and the
     * concatenated top-k (not yet oriented), and when recording and the Jacobian ended (nanoTime).
     */
    private record Core(double[] output, double[] linear, double[] constant, Spectrum[] perToken, Spectrum combined,
                        long recorded, long jacobianDone) {
    }

    private static Core fullCore(LanguageModel model, long[] ids, Options o, Target target, int topK, int sweepK,
                                 Progress progress, double totalUnits) {
        int d = model.config().hiddenSize();
        progress.update("record", 0);
        long[] recorded = {0};
        JacobianStack j = JacobianEngine.full(model, ids, o.dtype(), target, o.chunkBytes(), rows -> {
            if (recorded[0] == 0) { // the first call (0 rows) follows the recording
                recorded[0] = System.nanoTime();
            }
            progress.update("jacobian", rows / totalUnits);
        });
        long done = System.nanoTime();
        progress.update("svd", d / totalUnits);
        Spectrum[] spectra = Svd.topEachAndConcatenated(j.jacobian(), d, topK, sweepK);
        Spectrum[] perToken = Arrays.copyOf(spectra, ids.length);
        Spectrum combined = spectra[ids.length];
        return new Core(j.output(), j.reconstruct(), j.constant(), perToken, combined,
                recorded[0] == 0 ? done : recorded[0], done);
    }

    /**
     * {@link LowRank#topK} with k = max(topK, sweepK), trimmed to topK per token and sweepK combined. Progress: its
     * fraction of the planned passes fills {@code units} starting at {@code base}.
     */
    private static Core lowRankCore(LanguageModel model, long[] ids, Options o, Target target, int topK, int sweepK,
                                    Progress progress, double totalUnits, double base, double units) {
        long start = System.nanoTime();
        progress.update("lanczos", base / totalUnits);
        LowRank.Settings s = lowRankSettings(o, Math.max(topK, sweepK));
        LowRank.Result r = LowRank.topK(model, ids, o.dtype(), target, s,
                fraction -> progress.update("lanczos", (base + units * fraction) / totalUnits));
        Spectrum[] perToken = new Spectrum[ids.length];
        for (int i = 0; i < ids.length; i++) {
            perToken[i] = trim(r.perToken().get(i), topK);
        }
        return new Core(r.output(), r.reconstruction(), r.constant(), perToken,
                trim(r.combined(), sweepK), start, System.nanoTime());
    }

    private static Spectrum trim(Spectrum s, int k) {
        if (s.singularValues().length <= k) {
            return s;
        }
        return new Spectrum(Arrays.copyOf(s.singularValues(), k), Arrays.copyOf(s.u(), k),
                s.v() == null ? null : Arrays.copyOf(s.v(), k), s.frobeniusSq(), s.exact());
    }

    private static List<Direction> directions(Spectrum s, List<TokenDecoder.Ranked> ranked) {
        List<Direction> out = new ArrayList<>(ranked.size());
        for (int k = 0; k < ranked.size(); k++) {
            TokenDecoder.Ranked r = ranked.get(k);
            out.add(new Direction(s.singularValues()[k], r.positive(), r.negative(), r.words(), r.negativeWords()));
        }
        return out;
    }

    static String lower(Enum<?> e) {
        return e.name().toLowerCase(Locale.ROOT);
    }

    private static double ms(long from, long to) {
        return Math.round((to - from) / 1e4) / 100.0;
    }
}
