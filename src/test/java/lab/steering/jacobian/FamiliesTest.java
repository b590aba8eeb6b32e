package lab.steering.jacobian;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.KvCache;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelLoadException;
import lab.steering.model.Transformer;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeringOperator;
import lab.steering.testing.ReferenceDecoder;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Issue 8's acceptance for every family beyond Llama, on tiny random checkpoints with the family's exact HF tensor
 * names and config fields: the DJL model agrees with an independent float64 reference forward (logits and greedy
 * tokens); the float64 detached reconstruction (with the constant c where there are biases) is exact to 1e-12; the
 * transpose pass equals the autograd oracle; KV-cache decoding equals re-encoding; cached steering equals the
 * re-encoding oracle. Prompts are longer than the sliding windows, so the windows are exercised.
 */
class FamiliesTest {

    @TempDir
    static Path tmp;

    static final Map<String, LanguageModel> MODELS = new HashMap<>();
    static final Map<String, LanguageModel> MODELS64 = new HashMap<>();

    /** The tiny checkpoint of each family (sizes small, windows shorter than the prompts). */
    static TinyCheckpoint checkpoint(String family) {
        TinyCheckpoint t = TinyCheckpoint.family(family).hidden(32).layers(3).heads(4).kvHeads(2).intermediate(48)
                .vocab(64).seed(family.hashCode());
        return switch (family) {
            case "mistral" -> t.slidingWindow(4).tied(false);
            case "qwen2" -> t.tied(false);
            case "qwen3" -> t.headDim(16).ropeTheta(1e6);
            case "olmo2" -> t.tied(false).rmsNormEps(1e-6);
            case "gemma3_text" -> t.layers(4).headDim(16).slidingWindow(3).slidingPattern(2).ropeTheta(1e6)
                    .localRopeTheta(10000).queryPreAttnScalar(24).linearRopeScaling(8).rmsNormEps(1e-6);
            case "phi3" -> t.slidingWindow(5).tied(false);
            case "gpt2" -> t.kvHeads(4).intermediate(64).maxPositions(64);
            default -> throw new IllegalArgumentException(family);
        };
    }

    /** Every family beyond Llama; {@code -Dfamilies=a,b} runs a subset. */
    static Stream<String> families() {
        String only = System.getProperty("families", "");
        List<String> all = List.of("qwen2", "qwen3", "mistral", "olmo2", "gemma3_text", "phi3", "gpt2");
        return all.stream().filter(f -> only.isBlank() || Arrays.asList(only.split(",")).contains(f));
    }

    static synchronized LanguageModel model(String family, DataType dtype) throws IOException {
        Map<String, LanguageModel> cache = dtype == DataType.FLOAT64 ? MODELS64 : MODELS;
        LanguageModel m = cache.get(family);
        if (m == null) {
            Path folder = tmp.resolve(family);
            if (!folder.resolve("config.json").toFile().exists()) {
                checkpoint(family).writeTo(folder);
            }
            m = LanguageModel.load(folder, Device.cpu(), dtype);
            cache.put(family, m);
        }
        return m;
    }

    @AfterAll
    static void close() {
        MODELS.values().forEach(LanguageModel::close);
        MODELS64.values().forEach(LanguageModel::close);
    }

    static final long[] PROMPT = {1, 5, 9, 33, 2, 17, 40, 12, 7, 61, 3};

    static int[] ints(long[] ids) {
        return Arrays.stream(ids).mapToInt(i -> (int) i).toArray();
    }

    static long[] ids(Generation g) {
        return g.tokens().stream().mapToLong(t -> t.id()).toArray();
    }

    static double maxAbs(double[][] a, double[][] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            for (int k = 0; k < a[i].length; k++) {
                max = Math.max(max, Math.abs(a[i][k] - b[i][k]));
            }
        }
        return max;
    }

    @ParameterizedTest
    @MethodSource("families")
    void referenceForwardAgreesOnLogitsAndGreedyTokens(String family) throws IOException {
        model(family, DataType.FLOAT32); // writes the checkpoint
        ReferenceDecoder ref = ReferenceDecoder.load(tmp.resolve(family));
        double[][] want = ref.logits(ints(PROMPT));
        double[][] got64 = Generator.allLogits(model(family, DataType.FLOAT64), PROMPT, Hooks.NONE);
        double[][] got32 = Generator.allLogits(model(family, DataType.FLOAT32), PROMPT, Hooks.NONE);
        double spread = Arrays.stream(want[want.length - 1]).map(Math::abs).max().orElse(0);
        System.out.printf("%s reference logits: float64 max diff %.2e, float32 %.2e (|logit| up to %.2f)%n", family,
                maxAbs(got64, want), maxAbs(got32, want), spread);
        assertTrue(spread > 0.3, "logits should not be flat: " + spread);
        assertTrue(maxAbs(got64, want) <= 1e-10, family + " float64 logits differ by " + maxAbs(got64, want));
        assertTrue(maxAbs(got32, want) <= 1e-4, family + " float32 logits differ by " + maxAbs(got32, want));
        int[] greedy = ref.greedy(new int[] {1, 5, 9}, 16);
        for (DataType dt : new DataType[] {DataType.FLOAT64, DataType.FLOAT32}) {
            Generation g = Generator.generate(model(family, dt), new long[] {1, 5, 9}, GenerationParams.greedy(16),
                    Hooks.NONE, true, false, t -> { });
            assertArrayEquals(greedy, ints(ids(g)), family + " " + dt + " greedy tokens");
        }
    }

    @ParameterizedTest
    @MethodSource("families")
    void parameterCountIsTheSizeOfTheLoadedTensors(String family) throws IOException {
        LanguageModel m = model(family, DataType.FLOAT32);
        long loaded = m.transformer().weights().all().stream().mapToLong(a -> a.getShape().size()).sum();
        assertEquals(loaded, m.config().parameterCount(), family);
    }

    @ParameterizedTest
    @MethodSource("families")
    void frozenForwardReproducesTheOrdinaryForwardBitForBit(String family) throws IOException {
        for (DataType dt : new DataType[] {DataType.FLOAT32, DataType.FLOAT64}) {
            LanguageModel m = model(family, DataType.FLOAT32);
            Transformer tf = m.transformer(dt);
            try (NDManager nd = m.manager().newSubManager(); NDScope s = new NDScope()) {
                s.suppressNotUsedWarning();
                FrozenNetwork f = FrozenNetwork.record(tf, nd, PROMPT);
                var frozen = f.finalNorm(f.layers(f.embeddings(), 0, tf.config().numLayers()));
                assertArrayEquals(f.output.toType(DataType.FLOAT64, false).toDoubleArray(),
                        frozen.toType(DataType.FLOAT64, false).toDoubleArray(), 0.0, family + " " + dt);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("families")
    void detachedReconstructionIsExactInFloat64WithTheConstantTerm(String family) throws IOException {
        LanguageModel m = model(family, DataType.FLOAT32);
        boolean biases = m.config().family().hasBiases();
        Target out = Target.output(m.config().numLayers());
        JacobianStack j64 = JacobianEngine.full(m, PROMPT, DataType.FLOAT64, out, 64L << 20, r -> { });
        JacobianStack j32 = JacobianEngine.full(m, PROMPT, DataType.FLOAT32, out, 64L << 20, r -> { });
        double cNorm = JacobianStack.norm(j64.constant());
        double[] withoutC = new JacobianStack(j64.ids(), j64.dim(), j64.jacobian(), j64.inputs(), j64.output(),
                new double[j64.dim()], j64.dtype()).reconstruct();
        double errWithoutC = JacobianStack.relativeError(j64.output(), withoutC);
        System.out.printf("%s detached relErr float64 %.3e float32 %.3e, ||c|| %.3e (relErr without c %.3e)%n",
                family, j64.relativeError(), j32.relativeError(), cNorm, errWithoutC);
        assertTrue(j64.relativeError() <= 1e-12, family + " float64 relErr " + j64.relativeError());
        assertTrue(j32.relativeError() <= 1e-5, family + " float32 relErr " + j32.relativeError());
        if (biases) {
            assertTrue(cNorm > 1e-3, family + " has biases: c must be reported, ||c|| " + cNorm);
            assertTrue(errWithoutC > 1e-6, family + ": without c the reconstruction must miss, " + errWithoutC);
        } else {
            assertEquals(0.0, cNorm, family + " has no biases: c = 0");
        }
    }

    @ParameterizedTest
    @MethodSource("families")
    void matrixFreeTopKReconstructsWithTheSameConstant(String family) throws IOException {
        LanguageModel m = model(family, DataType.FLOAT32);
        Target out = Target.output(m.config().numLayers());
        JacobianStack full = JacobianEngine.full(m, PROMPT, DataType.FLOAT64, out, 64L << 20, r -> { });
        LowRank.Result lr = LowRank.topK(m, PROMPT, DataType.FLOAT64, out, LowRank.Settings.of(4), r -> { });
        assertArrayEquals(full.constant(), lr.constant(), 1e-12, family + " c");
        double err = JacobianStack.relativeError(lr.output(), lr.reconstruction());
        assertTrue(err <= 1e-12, family + " matrix-free reconstruction " + err);
    }

    /**
     * LowRank's forward products on columns (norms folded into the weights, positions before the first nonzero one
     * left out, the top layer at the last position only) against the row-layout frozen map, on every kind of target,
     * through the MLP weights and through the per-token MLP matrices; float64, to 1e-12 of the output.
     */
    @ParameterizedTest
    @MethodSource("families")
    void theLinearMapOnColumnsEqualsTheRowLayoutMap(String family) throws IOException {
        LanguageModel m = model(family, DataType.FLOAT32);
        int d = m.config().hiddenSize();
        int t = PROMPT.length;
        int layers = m.config().numLayers();
        Target[] targets = {Target.output(layers), new Target(2, Target.Mode.CUMULATIVE, Target.Component.ATTN),
            new Target(2, Target.Mode.LAYERWISE, Target.Component.MLP),
            new Target(1, Target.Mode.LAYERWISE, Target.Component.LAYER)};
        try (NDManager nd = m.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            FrozenNetwork f = FrozenNetwork.record(m.transformer(DataType.FLOAT64), nd, PROMPT);
            for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) { // the per-token MLP matrices, as a (nearly) complete basis uses them
                    f.precomputeMlp();
                    f.transposeColumns(targets[0], nd.eye(d, d, 0, DataType.FLOAT64));
                }
                for (Target tg : targets) {
                    for (int from : new int[] {0, 4}) {
                        NDArray x = nd.randomNormal(new Shape(3, t, d), DataType.FLOAT64);
                        if (from > 0) {
                            x = nd.zeros(new Shape(3, from, d), DataType.FLOAT64)
                                    .concat(x.get(new NDIndex(":, {}:, :", from)), 1);
                        }
                        double[] want = f.apply(tg, x).toDoubleArray();                      // (3, d)
                        NDArray cols = x.transpose(2, 1, 0).get(new NDIndex(":, {}:, :", from)); // (d, T - from, 3)
                        double[] got = f.applyColumns(tg, cols, from).transpose().toDoubleArray();
                        double scale = Arrays.stream(want).map(Math::abs).max().orElse(1);
                        for (int i = 0; i < want.length; i++) {
                            assertEquals(want[i], got[i], 1e-12 * scale, family + " " + tg + " from " + from
                                    + (pass == 1 ? " (MLP matrices)" : "") + " entry " + i);
                        }
                    }
                }
            }
        }
    }

    /** The matrix-free iteration itself (no completed basis) against the full SVD, in every family. */
    @ParameterizedTest
    @MethodSource("families")
    void matrixFreeIterationFindsTheTopValues(String family) throws IOException {
        LanguageModel m = model(family, DataType.FLOAT32);
        LowRankTest.check(m, PROMPT, Target.output(m.config().numLayers()),
                LowRankTest.strict(1).withExtra(1).withCompletion(false));
    }

    @ParameterizedTest
    @MethodSource("families")
    void theWholeAnalysisRunsWithBothMethodsAndReportsC(String family) throws IOException {
        LanguageModel m = model(family, DataType.FLOAT32);
        TokenDecoder decoder = new TokenDecoder(m);
        int[] layers = Analysis.defaultLayers(m.config().numLayers());
        for (Analysis.Method method : Analysis.Method.values()) {
            Analysis.Result r = Analysis.run(m, PROMPT, new Analysis.Options(method, DataType.FLOAT64, 4, layers,
                    Target.Mode.CUMULATIVE, Target.Component.LAYER, false, 64L << 20), decoder, (st, f) -> { });
            assertTrue(r.reconstruction().detachedRelError() <= 1e-12, family + " " + method + " " + r.reconstruction());
            assertEquals(m.config().family().hasBiases(), r.reconstruction().constantNorm() > 0, family + " ||c||");
            assertTrue(Double.isFinite(r.stableRank().combined()) && r.stableRank().combined() >= 1 - 1e-9,
                    family + " " + method + " stable rank " + r.stableRank().combined());
            assertTrue(Arrays.stream(r.stableRank().perToken()).allMatch(Double::isFinite), family + " per token");
            assertTrue(r.prediction().agree(), family + " " + method + " prediction");
        }
    }

    @ParameterizedTest
    @MethodSource("families")
    void transposePassEqualsTheAutogradOracle(String family) throws IOException {
        LanguageModel m = model(family, DataType.FLOAT32);
        int layers = m.config().numLayers();
        List<Target> targets = new ArrayList<>();
        targets.add(Target.output(layers));
        for (Target.Component comp : Target.Component.values()) {
            targets.add(new Target(1, Target.Mode.CUMULATIVE, comp));
            targets.add(new Target(layers - 1, Target.Mode.LAYERWISE, comp));
            targets.add(new Target(layers, Target.Mode.CUMULATIVE, comp));
        }
        for (Target t : targets) {
            JacobianStack fast = JacobianEngine.full(m, PROMPT, DataType.FLOAT64, t, 1L << 16, r -> { });
            JacobianStack oracle = JacobianEngine.autogradOracle(m, PROMPT, DataType.FLOAT64, t);
            double diff = DetachedJacobianTest.maxRelDiff(fast, oracle);
            assertTrue(diff <= 1e-10, family + " " + t + ": transpose vs autograd " + diff);
            assertTrue(fast.relativeError() <= 1e-12, family + " " + t + ": relErr " + fast.relativeError());
            assertArrayEquals(oracle.output(), fast.output(), 1e-12);
            assertArrayEquals(oracle.constant(), fast.constant(), 1e-12);
        }
    }

    @ParameterizedTest
    @MethodSource("families")
    void kvCacheDecodingEqualsReencoding(String family) throws IOException {
        LanguageModel model = model(family, DataType.FLOAT32);
        double[][] full = Generator.allLogits(model, PROMPT, Hooks.NONE);
        Transformer tf = model.transformer();
        try (NDManager m = model.manager().newSubManager();
             KvCache cache = new KvCache(m, tf.config(), 1, 4, DataType.FLOAT32)) {
            int[] chunks = {3, 1, 5, 1, 1};
            int pos = 0;
            int c = 0;
            while (pos < PROMPT.length) {
                int n = Math.min(chunks[c++ % chunks.length], PROMPT.length - pos);
                float[] got = Generator.lastLogits(tf, m, Arrays.copyOfRange(PROMPT, pos, pos + n), cache, Hooks.NONE);
                pos += n;
                double maxDiff = 0;
                for (int i = 0; i < got.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(got[i] - full[pos - 1][i]));
                }
                assertEquals(0, maxDiff, 1e-5, family + " logits at position " + (pos - 1));
            }
        }
        var params = GenerationParams.greedy(30);
        long[] cached = ids(Generator.generate(model, new long[] {1, 5}, params, Hooks.NONE, true, false, t -> { }));
        long[] reenc = ids(Generator.generate(model, new long[] {1, 5}, params, Hooks.NONE, false, false, t -> { }));
        assertArrayEquals(reenc, cached, family + " greedy with and without the cache");
    }

    @ParameterizedTest
    @MethodSource("families")
    void cachedSteeringEqualsTheReencodingOracle(String family) throws IOException {
        LanguageModel model = model(family, DataType.FLOAT32);
        long[] concept = {1, 44, 45, 46, 47, 48, 20};
        int changed = 0;
        for (int layer : new int[] {1, 2, model.config().numLayers()}) {
            SteeringOperator op = OperatorBuilder.full(model, concept, layer, DataType.FLOAT32, r -> { });
            for (double lambda : new double[] {0.5, 2.0}) {
                long[][] got = new long[2][];
                for (int c = 0; c < 2; c++) {
                    try (NDManager m = model.manager().newSubManager()) {
                        Injector inj = new Injector(op, lambda, m, DataType.FLOAT32);
                        got[c] = ids(Generator.generate(model, new long[] {1, 5, 9}, GenerationParams.greedy(16),
                                inj.hooks(), c == 0, false, t -> { }));
                    }
                }
                assertArrayEquals(got[1], got[0], family + " layer " + layer + " lambda " + lambda);
                long[] plain = ids(Generator.generate(model, new long[] {1, 5, 9}, GenerationParams.greedy(16),
                        Hooks.NONE, true, false, t -> { }));
                if (!Arrays.equals(plain, got[0])) {
                    changed++;
                }
            }
        }
        assertTrue(changed > 0, family + ": steering should change the text somewhere");
    }

    @Test
    void theSlidingWindowMattersOnPromptsLongerThanIt() throws IOException {
        LanguageModel windowed = model("mistral", DataType.FLOAT64);
        double[][] a = Generator.allLogits(windowed, PROMPT, Hooks.NONE);
        try (LanguageModel full = LanguageModel.load(withField("mistral", "sliding_window", null), Device.cpu(),
                DataType.FLOAT64)) {
            double[][] b = Generator.allLogits(full, PROMPT, Hooks.NONE);
            assertEquals(0, maxAbs(Arrays.copyOf(a, 4), Arrays.copyOf(b, 4)), 1e-12, "within the window: the same");
            assertTrue(maxAbs(a, b) > 1e-3, "past the window the outputs differ: " + maxAbs(a, b));
        }
    }

    @Test
    void gemmaRopeParametersPerLayerTypeReadLikeTheFlatFields() throws IOException {
        if (!families().toList().contains("gemma3_text")) {
            return;
        }
        Path dir = checkpoint("gemma3_text").writeTo(tmp.resolve("gemma-rope-parameters"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        ObjectNode params = cfg.putObject("rope_parameters");
        ObjectNode full = params.putObject("full_attention");
        full.put("rope_type", "linear");
        full.put("factor", cfg.get("rope_scaling").get("factor").asDouble());
        full.put("rope_theta", cfg.get("rope_theta").asDouble());
        params.putObject("sliding_attention").put("rope_type", "default")
                .put("rope_theta", cfg.get("rope_local_base_freq").asDouble());
        for (String f : List.of("rope_scaling", "rope_theta", "rope_local_base_freq")) {
            cfg.remove(f);
        }
        json.writeValue(dir.resolve("config.json").toFile(), cfg);
        try (LanguageModel m = LanguageModel.load(dir, Device.cpu(), DataType.FLOAT64)) {
            assertEquals(0, maxAbs(Generator.allLogits(model("gemma3_text", DataType.FLOAT64), PROMPT, Hooks.NONE),
                    Generator.allLogits(m, PROMPT, Hooks.NONE)), 0.0);
        }
    }

    // ---------------------------------------------------------------- config errors

    static Path withField(String family, String field, Object value) throws IOException {
        Path dir = checkpoint(family).writeTo(tmp.resolve("bad-" + family + "-" + field));
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        cfg.set(field, json.valueToTree(value));
        json.writeValue(dir.resolve("config.json").toFile(), cfg);
        return dir;
    }

    @Test
    void unknownModelTypeAndUnsupportedFieldsGiveErrorsNamingThem() throws IOException {
        var e = assertThrows(ModelLoadException.class,
                () -> LanguageModel.load(withField("mistral", "model_type", "falcon"), Device.cpu()));
        assertTrue(e.getMessage().contains("model_type 'falcon' is not supported"), e.getMessage());
        e = assertThrows(ModelLoadException.class,
                () -> LanguageModel.load(withField("qwen2", "use_sliding_window", true), Device.cpu()));
        assertTrue(e.getMessage().contains("use_sliding_window=true"), e.getMessage());
        e = assertThrows(ModelLoadException.class,
                () -> LanguageModel.load(withField("mistral", "hidden_act", "gelu"), Device.cpu()));
        assertTrue(e.getMessage().contains("hidden_act 'gelu'"), e.getMessage());
        e = assertThrows(ModelLoadException.class,
                () -> LanguageModel.load(withField("qwen3", "attention_bias", true), Device.cpu()));
        assertTrue(e.getMessage().contains("attention_bias=true"), e.getMessage());
    }

    /**
     * Writes each family's {@link #checkpoint} folder (config.json in the older field spelling that hub checkpoints
     * use: rope_theta, rope_scaling, sliding_window_pattern, rope_local_base_freq) with {@link ReferenceDecoder}'s
     * logits and greedy ids, for scripts/reference/crosscheck_tiny_checkpoint.py to compare with transformers:
     * {@code -Dreference.crosscheck.dir=DIR}. Skipped without it.
     */
    @Test
    void writeFoldersForHuggingFaceCrossCheck() throws IOException {
        String out = System.getProperty("reference.crosscheck.dir");
        org.junit.jupiter.api.Assumptions.assumeTrue(out != null,
                "set -Dreference.crosscheck.dir=DIR to write HF cross-check folders");
        ObjectMapper json = new ObjectMapper();
        for (String family : families().toList()) {
            Path dir = checkpoint(family).writeTo(Path.of(out, "family-" + family));
            ReferenceDecoder ref = ReferenceDecoder.load(dir);
            int[] prompt = new int[24];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 1 + (i * 13) % (ref.vocabSize() - 1);
            }
            ObjectNode fx = json.createObjectNode();
            fx.putPOJO("prompt", prompt);
            fx.putPOJO("logits", Arrays.stream(ref.logits(prompt)).flatMapToDouble(Arrays::stream).toArray());
            fx.putPOJO("greedy", ref.greedy(prompt, 8));
            json.writeValue(dir.resolve("reference-decoder.json").toFile(), fx);
        }
    }
}
