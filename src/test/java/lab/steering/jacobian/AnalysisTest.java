package lab.steering.jacobian;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import lab.steering.SharedModels;
import lab.steering.model.LanguageModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The whole analysis on stories260K-text, "Once upon a time" (5 tokens, BOS included). Thresholds as in
 * DetachedJacobianTest: float64 reconstruction at 1e-12 (observed ~1e-16), float32 at 1e-5 (observed ~1e-7); the
 * ordinary Jacobian must miss by more than 1e-2 (the paper's contrast; observed ~0.5).
 */
class AnalysisTest {

    static LanguageModel model;
    static TokenDecoder decoder;
    static long[] ids;

    @BeforeAll
    static void load() {
        model = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
        decoder = new TokenDecoder(model);
        ids = model.tokenizer().encode("Once upon a time");
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static Analysis.Options options(DataType dtype, int topK, int[] layers, boolean bothSigns) {
        return options(Analysis.Method.FULL, dtype, topK, layers, bothSigns);
    }

    static Analysis.Options options(Analysis.Method method, DataType dtype, int topK, int[] layers, boolean bothSigns) {
        return new Analysis.Options(method, dtype, topK, layers, Target.Mode.CUMULATIVE, Target.Component.LAYER, bothSigns,
                64L << 20);
    }

    @Test
    void defaultSweepLayersFollowTheAuthorsRange() {
        assertArrayEquals(new int[] {1, 2, 3, 4, 5}, Analysis.defaultLayers(5));
        assertArrayEquals(new int[] {1, 4, 7, 10, 13, 16, 19, 22, 25, 28}, Analysis.defaultLayers(28));
        assertArrayEquals(new int[] {1, 5, 9, 13, 17, 21, 25, 29, 32}, Analysis.defaultLayers(32));
        assertArrayEquals(new int[] {1}, Analysis.defaultLayers(1));
    }

    @Test
    void withoutTheOrdinaryJacobianTheSpectraAreTheSame() {
        Analysis.Options with = options(DataType.FLOAT64, 4, new int[0], false);
        Analysis.Result a = Analysis.run(model, ids, with, decoder, Analysis.Progress.NONE);
        Analysis.Result b = Analysis.run(model, ids, with.withoutOrdinary(), decoder, Analysis.Progress.NONE);
        assertNotNull(a.reconstruction().ordinaryRelError());
        assertNull(b.reconstruction().ordinaryRelError());
        assertNull(b.reconstruction().ordinary());
        assertEquals(a.stableRank().combined(), b.stableRank().combined(), 0.0);
        assertArrayEquals(a.stableRank().perToken(), b.stableRank().perToken(), 0.0);
        assertEquals(a.reconstruction().detachedRelError(), b.reconstruction().detachedRelError(), 0.0);
    }

    @Test
    void float64AnalysisReconstructsExactlyAndAgreesWithTheModel() {
        int[] layers = Analysis.defaultLayers(model.config().numLayers());
        List<String> stages = new ArrayList<>();
        List<Double> fractions = new ArrayList<>();
        Analysis.Result r = Analysis.run(model, ids, options(DataType.FLOAT64, 8, layers, true), decoder,
                (stage, f) -> {
                    stages.add(stage);
                    fractions.add(f);
                });
        System.out.printf("stories260K-text float64: detached %.3e ordinary %.3e, stable rank %.3f, timings %s%n",
                r.reconstruction().detachedRelError(), r.reconstruction().ordinaryRelError(),
                r.stableRank().combined(), r.timings());
        assertTrue(r.reconstruction().detachedRelError() <= 1e-12, "" + r.reconstruction());
        assertTrue(r.reconstruction().ordinaryRelError() > 1e-2, "" + r.reconstruction());
        assertEquals(0.0, r.reconstruction().constantNorm());
        assertTrue(r.prediction().agree());
        assertEquals(r.prediction().model().id(), r.prediction().linear().id());
        assertEquals(ids.length, r.perToken().size());
        assertEquals(ids.length, r.tokens().size());
        for (Analysis.TokenSpectrum s : r.perToken()) {
            assertEquals(8, s.singularValues().length);
            for (int k = 1; k < 8; k++) {
                assertTrue(s.singularValues()[k] <= s.singularValues()[k - 1]);
            }
            assertTrue(s.stableRank() >= 1 - 1e-12);
            assertEquals(8, s.u().size());
            assertEquals(8, s.v().size());
            assertEquals(8, s.u().get(0).tokens().size());
            assertEquals(8, s.u().get(0).negative().size(), "bothSigns");
            assertEquals(s.singularValues()[0], s.u().get(0).sigma());
        }
        assertTrue(r.stableRank().combined() >= 1);
        assertEquals(layers.length, r.layers().size());
        for (Analysis.Layer l : r.layers()) {
            assertTrue(l.relError() <= 1e-12, "layer " + l.layer() + " relErr " + l.relError());
            assertTrue(l.stableRank() >= 1 - 1e-12);
            assertEquals(8, l.singularValues().length);
            assertEquals(8, l.logitLens().size());
        }
        // the last swept layer is the model output: its logit lens is the model's own prediction
        Analysis.Layer last = r.layers().get(r.layers().size() - 1);
        assertEquals(model.config().numLayers(), last.layer());
        assertEquals(r.prediction().model().id(), last.logitLens().get(0).id());
        assertEquals(r.stableRank().combined(), last.stableRank());
        // progress: from "record" to "done", never backwards, within 0..1
        assertEquals("record", stages.get(0));
        assertEquals("done", stages.get(stages.size() - 1));
        for (int i = 1; i < fractions.size(); i++) {
            assertTrue(fractions.get(i) >= fractions.get(i - 1) - 1e-12, "progress " + fractions);
            assertTrue(fractions.get(i) <= 1 + 1e-12);
        }
    }

    @Test
    void float32AnalysisReconstructsToFloat32Precision() {
        Analysis.Result r = Analysis.run(model, ids, options(DataType.FLOAT32, 4, new int[0], false), decoder,
                Analysis.Progress.NONE);
        System.out.printf("stories260K-text float32: detached %.3e ordinary %.3e, timings %s%n",
                r.reconstruction().detachedRelError(), r.reconstruction().ordinaryRelError(), r.timings());
        assertTrue(r.reconstruction().detachedRelError() <= 1e-5, "" + r.reconstruction());
        assertTrue(r.reconstruction().ordinaryRelError() > 1e-2, "" + r.reconstruction());
        assertTrue(r.prediction().agree());
        assertTrue(r.layers().isEmpty());
        assertEquals(4, r.perToken().get(0).singularValues().length);
        assertNull(r.perToken().get(0).u().get(0).negative());
    }

    /**
     * The layer-by-token view against a second computation: every cell's J_{l,i} from the autograd oracle (not the
     * transpose pass), its top singular triplet by a full SVD (not the Gram eigendecomposition), the stable rank as
     * sum of squares / sigma_1^2, and u_1's top token by a plain-Java float64 lm_head (tied: the embedding rows of
     * {@link ReferenceLlama}) after the sign rule <u_1, sum_i J_i x_i> > 0.
     */
    @Test
    void layerByTokenCellsMatchAFullSvdOfTheAutogradJacobians() throws java.io.IOException {
        int numLayers = model.config().numLayers();
        int d = model.config().hiddenSize();
        int[] layers = {1, 3, numLayers};
        long t0 = System.nanoTime();
        Analysis.Result r = Analysis.run(model, ids, options(DataType.FLOAT64, 8, layers, true), decoder,
                Analysis.Progress.NONE);
        System.out.printf("stories260K-text layer-by-token sweep: %.0f ms (timings %s)%n",
                (System.nanoTime() - t0) / 1e6, r.timings());
        lab.steering.testing.ReferenceLlama ref = lab.steering.testing.ReferenceLlama.load(
                SharedModels.require(SharedModels.STORIES_TEXT));
        assertTrue(ref.tiedEmbeddings(), "the test decodes through the embedding rows");
        double[][] embed = new double[ref.vocabSize()][];
        for (int v = 0; v < embed.length; v++) {
            embed[v] = ref.embedding(v);
        }
        double[] linear = r.reconstruction().linear();
        int checkedTokens = 0;
        for (int li = 0; li < layers.length; li++) {
            Analysis.Layer l = r.layers().get(li);
            assertEquals(layers[li], l.layer());
            assertEquals(ids.length, l.cells().size());
            JacobianStack oracle = JacobianEngine.autogradOracle(model, ids, DataType.FLOAT64,
                    new Target(layers[li], Target.Mode.CUMULATIVE, Target.Component.LAYER));
            for (int i = 0; i < ids.length; i++) {
                Analysis.Cell c = l.cells().get(i);
                assertEquals(i, c.position());
                Spectrum s = Svd.top(oracle.jacobian()[i], d, 2);
                double frob = 0;
                for (double x : oracle.jacobian()[i]) {
                    frob += x * x;
                }
                double sigma = s.singularValues()[0];
                String at = "layer " + l.layer() + " token " + i;
                assertEquals(sigma, c.sigma(), 1e-9 * sigma, at);
                assertEquals(frob / (sigma * sigma), c.stableRank(), 1e-8 * c.stableRank(), at);
                assertTrue(c.stableRank() >= 1 - 1e-12, at);
                // u_1 is defined up to sign only when sigma_1 is simple
                if (s.singularValues()[1] > sigma * (1 - 1e-6)) {
                    continue;
                }
                double[] u = s.u()[0];
                if (Svd.dot(u, linear) < 0) {
                    u = java.util.Arrays.stream(u).map(x -> -x).toArray();
                }
                double[] logits = new double[embed.length];
                for (int v = 0; v < embed.length; v++) {
                    logits[v] = Svd.dot(embed[v], u);
                }
                int best = 0;
                int worst = 0;
                for (int v = 1; v < logits.length; v++) {
                    best = logits[v] > logits[best] ? v : best;
                    worst = logits[v] < logits[worst] ? v : worst;
                }
                assertEquals(best, c.top().id(), at + " top token");
                assertEquals(logits[best], c.top().score(), 1e-9 * Math.abs(logits[best]), at);
                assertNotNull(c.negative(), "bothSigns: " + at);
                assertEquals(worst, c.negative().id(), at + " top token of -u_1");
                checkedTokens++;
            }
        }
        assertTrue(checkedTokens >= layers.length * ids.length - 2, "cells whose u_1 is defined: " + checkedTokens);
        // the model output's cells are the per-token analysis itself
        Analysis.Layer last = r.layers().get(layers.length - 1);
        for (int i = 0; i < ids.length; i++) {
            assertEquals(r.perToken().get(i).stableRank(), last.cells().get(i).stableRank(), 1e-12);
            assertEquals(r.perToken().get(i).u().get(0).tokens().get(0).id(), last.cells().get(i).top().id());
        }
        // without bothSigns no negative side
        Analysis.Result one = Analysis.run(model, ids, options(DataType.FLOAT32, 4, new int[] {2}, false), decoder,
                Analysis.Progress.NONE);
        assertNull(one.layers().get(0).cells().get(0).negative());
    }

    /** The matrix-free method against the full one: top values to 1e-6 (LowRankTest's tolerance), same decoding. */
    @Test
    void lowRankMethodAgreesWithTheFullMethod() {
        int[] layers = {1}; // layer 1 layerwise: a second low-rank run through one decoder layer (the sweep path)
        Analysis.Options fo = new Analysis.Options(Analysis.Method.FULL, DataType.FLOAT64, 8, layers,
                Target.Mode.LAYERWISE, Target.Component.LAYER, false, 64L << 20);
        Analysis.Options lo = new Analysis.Options(Analysis.Method.LOW_RANK, DataType.FLOAT64, 8, layers,
                Target.Mode.LAYERWISE, Target.Component.LAYER, false, 64L << 20);
        Analysis.Result full = Analysis.run(model, ids, fo, decoder, Analysis.Progress.NONE);
        Analysis.Result lr = Analysis.run(model, ids, lo, decoder, Analysis.Progress.NONE);
        System.out.printf("stories260K-text lanczos float64: detached %.3e, timings %s%n",
                lr.reconstruction().detachedRelError(), lr.timings());
        assertEquals("lanczos", lr.method());
        assertNull(lr.reconstruction().ordinaryRelError(), "not computed by the low-rank method");
        assertFalse(lr.stableRank().exact());
        assertTrue(full.stableRank().exact());
        assertTrue(lr.reconstruction().detachedRelError() <= 1e-12);
        assertEquals(full.prediction(), lr.prediction());
        for (int i = 0; i < ids.length; i++) {
            double[] a = full.perToken().get(i).singularValues();
            double[] b = lr.perToken().get(i).singularValues();
            assertEquals(8, b.length);
            for (int k = 0; k < 8; k++) {
                assertEquals(a[k], b[k], 1e-6 * a[0], "token " + i + " sigma " + k);
            }
            // the top direction decodes to the same tokens (same vector up to the oriented sign)
            assertEquals(full.perToken().get(i).u().get(0).tokens().get(0).id(),
                    lr.perToken().get(i).u().get(0).tokens().get(0).id());
        }
        for (int l = 0; l < layers.length; l++) {
            Analysis.Layer a = full.layers().get(l);
            Analysis.Layer b = lr.layers().get(l);
            assertEquals("layerwise", b.mode());
            for (int k = 0; k < 8; k++) {
                assertEquals(a.singularValues()[k], b.singularValues()[k], 1e-6 * a.singularValues()[0]);
            }
            assertTrue(b.relError() <= 1e-12);
            assertEquals(a.logitLens().get(0).id(), b.logitLens().get(0).id());
            for (int i = 0; i < ids.length; i++) { // the layer-by-token cells: same sigma_1 and decoded token
                Analysis.Cell ca = a.cells().get(i);
                Analysis.Cell cb = b.cells().get(i);
                assertEquals(ca.sigma(), cb.sigma(), 1e-6 * ca.sigma(), "cell " + i);
                assertEquals(ca.top().id(), cb.top().id(), "cell " + i);
            }
        }
    }

    @Test
    void cancellingFromTheProgressCallbackStopsTheAnalysisAndFreesItsArrays() {
        Analysis.Options o = options(DataType.FLOAT64, 8, new int[] {2, 3}, false);
        Analysis.run(model, ids, o, decoder, Analysis.Progress.NONE); // warm-up: the float64 copy of the weights
        int before = model.manager().getManagedArrays().size();
        for (String at : new String[] {"record", "jacobian", "ordinary", "sweep layer 3 (2/2)"}) {
            assertThrows(CancellationException.class, () -> Analysis.run(model, ids, o, decoder, (stage, f) -> {
                if (stage.equals(at)) {
                    throw new CancellationException("at " + at);
                }
            }), at);
        }
        Analysis.Options lr = options(Analysis.Method.LOW_RANK, DataType.FLOAT64, 8, new int[] {2}, false);
        int[] calls = {0};
        assertThrows(CancellationException.class, () -> Analysis.run(model, ids, lr, decoder, (stage, f) -> {
            if (stage.equals("lanczos") && ++calls[0] == 3) { // inside LowRank's iterations
                throw new CancellationException("in the iterations");
            }
        }));
        assertEquals(before, model.manager().getManagedArrays().size(), "arrays left after cancellation");
    }

    /**
     * The estimates "auto" compares (JacobianService.choose: full without its ordinary Jacobian against low-rank):
     * on this model's short prompts the matrix-free method would complete its basis, so the full one is no slower;
     * on a model in the shape of Llama 3.2 1B the matrix-free top-k is several times cheaper, and a long prompt's
     * full stack outgrows the memory the low-rank method needs.
     */
    @Test
    void estimatesFavourTheFullMethodOnShortPromptsOfSmallModelsAndTheLowRankOneOnLargeModels(
            @org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws java.io.IOException {
        int[] sweep = Analysis.defaultLayers(model.config().numLayers());
        Analysis.Options full = options(Analysis.Method.FULL, DataType.FLOAT32, 8, sweep, false).withoutOrdinary();
        Analysis.Options low = options(Analysis.Method.LOW_RANK, DataType.FLOAT32, 8, sweep, false);
        double fullSmall = Analysis.estimate(model.config(), 5, DataType.FLOAT32, full, false).flops();
        double lowSmall = Analysis.estimate(model.config(), 5, DataType.FLOAT32, low, false).flops();
        assertTrue(fullSmall <= 1.25 * lowSmall, "small model: full " + fullSmall + " vs low-rank " + lowSmall);
        java.nio.file.Files.writeString(tmp.resolve("config.json"), """
                {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
                 "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
                 "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                  "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                 "tie_word_embeddings": true}""");
        lab.steering.model.ModelConfig big = lab.steering.model.ModelConfig.read(tmp);
        int[] bigSweep = Analysis.defaultLayers(16);
        Analysis.Options bigFull = options(Analysis.Method.FULL, DataType.FLOAT32, 4, bigSweep, false)
                .withoutOrdinary();
        Analysis.Options bigLow = options(Analysis.Method.LOW_RANK, DataType.FLOAT32, 4, bigSweep, false);
        Analysis.Estimate f8 = Analysis.estimate(big, 8, DataType.FLOAT32, bigFull, false);
        Analysis.Estimate l8 = Analysis.estimate(big, 8, DataType.FLOAT32, bigLow, false);
        assertTrue(l8.flops() * 2 < f8.flops(), "1B, 8 tokens: low-rank " + l8.flops() + " vs full " + f8.flops());
        Analysis.Estimate f128 = Analysis.estimate(big, 128, DataType.FLOAT32, bigFull, false);
        Analysis.Estimate l128 = Analysis.estimate(big, 128, DataType.FLOAT32, bigLow, false);
        assertTrue(l128.bytes() < f128.bytes(), "1B, 128 tokens: low-rank " + l128.megabytes() + " MB vs full "
                + f128.megabytes() + " MB");
    }

    @Test
    void estimateGrowsWithTokensAndPrecision() {
        Analysis.Options o32 = options(DataType.FLOAT32, 8, Analysis.defaultLayers(5), false);
        Analysis.Options o64 = options(DataType.FLOAT64, 8, Analysis.defaultLayers(5), false);
        Analysis.Estimate small = Analysis.estimate(model.config(), 5, DataType.FLOAT32, o32, false);
        Analysis.Estimate large = Analysis.estimate(model.config(), 50, DataType.FLOAT32, o32, false);
        Analysis.Estimate f64 = Analysis.estimate(model.config(), 50, DataType.FLOAT64, o64, false);
        long stack = 50L * 64 * 64 * 8;
        assertTrue(large.bytes() >= 2 * stack, "at least the output and ordinary stacks");
        assertTrue(large.bytes() > small.bytes());
        assertTrue(f64.bytes() > large.bytes());
        assertTrue(large.flops() > small.flops());
        assertNotNull(Analysis.estimate(model.config(), 5, DataType.FLOAT32, o32, true));
        assertFalse(Analysis.estimate(model.config(), 5, DataType.FLOAT32, o32, true).bytes()
                > Analysis.estimate(model.config(), 5, DataType.FLOAT32, o32, false).bytes());
    }

    @Test
    void estimateWithoutTheOrdinaryJacobianCountsLess() {
        Analysis.Options with = options(DataType.FLOAT32, 8, new int[0], false);
        Analysis.Estimate both = Analysis.estimate(model.config(), 50, DataType.FLOAT32, with, false);
        Analysis.Estimate detachedOnly = Analysis.estimate(model.config(), 50, DataType.FLOAT32,
                with.withoutOrdinary(), false);
        long stack = 50L * 64 * 64 * 8;
        assertTrue(both.bytes() >= 2 * stack, "the output and ordinary stacks");
        assertTrue(detachedOnly.bytes() < both.bytes(), detachedOnly.bytes() + " vs " + both.bytes());
        assertTrue(detachedOnly.bytes() >= stack, "still the output stack");
        assertTrue(detachedOnly.flops() < both.flops());
    }
}
