package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import lab.steering.SharedModels;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Operator steering with the KV cache against the paper's algorithm (re-encode the whole text at every step). */
class InjectorTest {

    static LanguageModel model;
    static SteeringOperator dense;

    @BeforeAll
    static void build() {
        model = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
        long[] concept = model.tokenizer().encode("The dog barked at the cat in the garden");
        dense = OperatorBuilder.full(model, concept, OperatorBuilder.defaultLayer(5), DataType.FLOAT32, r -> { });
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static long[] ids(Generation g) {
        return g.tokens().stream().mapToLong(t -> t.id()).toArray();
    }

    static Generation steer(SteeringOperator op, double lambda, String prompt, boolean cache) {
        try (NDManager m = model.manager().newSubManager()) {
            Injector inj = new Injector(op, lambda, m, DataType.FLOAT32);
            return Generator.generate(model, model.tokenizer().encode(prompt), GenerationParams.greedy(24),
                    inj.hooks(), cache, true, t -> { });
        }
    }

    @Test
    void cachedInjectionGivesTheTokensOfReencodingTheWholeText() {
        int arrays = model.manager().getManagedArrays().size();
        for (double lambda : new double[] {0.5, 1.0, 2.0}) {
            for (String prompt : new String[] {"Once upon a time", "Lily went to the park and"}) {
                Generation cached = steer(dense, lambda, prompt, true);
                Generation reencoded = steer(dense, lambda, prompt, false);
                assertArrayEquals(ids(reencoded), ids(cached), "lambda " + lambda + " '" + prompt + "'");
            }
        }
        assertEquals(arrays, model.manager().getManagedArrays().size(), "arrays left in the model's manager");
    }

    @Test
    void cachedInjectionGivesTheTokensOfReencodingAtEverySplitLayer() {
        long[] concept = model.tokenizer().encode("The dog barked at the cat in the garden");
        int changed = 0;
        for (int layer = 1; layer <= model.config().numLayers(); layer++) {
            SteeringOperator op = layer == dense.layer() ? dense
                    : OperatorBuilder.full(model, concept, layer, DataType.FLOAT32, r -> { });
            for (double lambda : new double[] {0.5, 2.0, -1.0}) {
                Generation cached = steer(op, lambda, "Lily went to the park and", true);
                Generation reencoded = steer(op, lambda, "Lily went to the park and", false);
                assertArrayEquals(ids(reencoded), ids(cached), "layer " + layer + " lambda " + lambda);
                if (lambda == 2.0 && !java.util.Arrays.equals(ids(cached), ids(steer(op, 0, "Lily went to the park and", true)))) {
                    changed++;
                }
            }
        }
        assertTrue(changed >= 3, "lambda 2 should change the text at most layers, changed at " + changed);
    }

    @Test
    void onTheDefaultModelCachedInjectionGivesTheTokensOfReencoding() {
        java.nio.file.Path folder = java.nio.file.Path.of("models", "steering-lab-base");
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isRegularFile(folder.resolve("config.json")),
                "skipped: models/steering-lab-base is not published yet");
        try (LanguageModel base = LanguageModel.load(folder, ai.djl.Device.cpu())) {
            long[] concept = base.tokenizer().encode("And the LORD spake unto Moses, saying");
            long[] prompt = base.tokenizer().encode("The weather today is");
            for (int layer : new int[] {2, 4, 6}) {
                SteeringOperator op = OperatorBuilder.full(base, concept, layer, DataType.FLOAT32, r -> { });
                for (double lambda : new double[] {0.5, 1.0, 3.0}) {
                    long[][] got = new long[2][];
                    for (int c = 0; c < 2; c++) {
                        try (NDManager m = base.manager().newSubManager()) {
                            Injector inj = new Injector(op, lambda, m, DataType.FLOAT32);
                            got[c] = ids(Generator.generate(base, prompt, GenerationParams.greedy(24), inj.hooks(),
                                    c == 0, true, t -> { }));
                        }
                    }
                    assertArrayEquals(got[1], got[0], "layer " + layer + " lambda " + lambda);
                }
            }
        }
    }

    @Test
    void lowRankAndVectorInjectionAlsoMatchReencoding() {
        SteeringOperator lr = OperatorBuilder.lowRank(dense, 8, 0);
        SteeringVector v = SteeringVector.build(model, dense.conceptIds(), model.tokenizer().encode(""), 2);
        for (double lambda : new double[] {1.0, 3.0}) {
            assertArrayEquals(ids(steer(lr, lambda, "Once upon a time", false)),
                    ids(steer(lr, lambda, "Once upon a time", true)), "low-rank, lambda " + lambda);
            assertArrayEquals(ids(steerVector(v, lambda, false)), ids(steerVector(v, lambda, true)),
                    "vector, lambda " + lambda);
        }
    }

    static Generation steerVector(SteeringVector v, double lambda, boolean cache) {
        try (NDManager m = model.manager().newSubManager()) {
            VectorInjector inj = new VectorInjector(v, lambda, m, DataType.FLOAT32);
            return Generator.generate(model, model.tokenizer().encode("Once upon a time"), GenerationParams.greedy(24),
                    inj.hooks(), cache, true, t -> { });
        }
    }

    @Test
    void zeroStrengthIsTheUnsteeredModelAndStrengthChangesTheText() {
        long[] prompt = model.tokenizer().encode("Once upon a time");
        Generation plain = Generator.generate(model, prompt, GenerationParams.greedy(24), Hooks.NONE);
        assertArrayEquals(ids(plain), ids(steer(dense, 0.0, "Once upon a time", true)));
        Generation steered = steer(dense, 2.0, "Once upon a time", true);
        assertFalse(java.util.Arrays.equals(ids(plain), ids(steered)), "lambda 2 should change the continuation");
        System.out.println("plain:   " + plain.completion());
        System.out.println("steered: " + steered.completion());
    }

    @Test
    void injectedVectorsAreTheOperatorTimesTheEmbeddingsOnOneTokenAndOnManyTokenCalls() {
        SteeringOperator lr = OperatorBuilder.lowRank(dense, 5, 1.0);
        int d = dense.dim();
        int tc = dense.tokens();
        java.util.Random rnd = new java.util.Random(7);
        int t = tc + 3; // wraps around the concept positions
        double[][] x = new double[t][d];
        for (double[] row : x) {
            for (int i = 0; i < d; i++) {
                row[i] = rnd.nextGaussian();
            }
        }
        for (SteeringOperator op : new SteeringOperator[] {dense, lr}) {
            try (NDManager m = model.manager().newSubManager()) {
                Injector inj = new Injector(op, 1, m, DataType.FLOAT64);
                double[] flat = new double[t * d];
                for (int k = 0; k < t; k++) {
                    System.arraycopy(x[k], 0, flat, k * d, d);
                }
                ai.djl.ndarray.NDArray all = m.create(flat, new ai.djl.ndarray.types.Shape(t, d));
                double[] many = inj.vectors(all, new lab.steering.hook.HookContext(0, t)).toDoubleArray();
                for (int k = 0; k < t; k++) {
                    double[] want = reference(op, k % tc, x[k]);
                    ai.djl.ndarray.NDArray one = m.create(x[k], new ai.djl.ndarray.types.Shape(1, d));
                    double[] single = inj.vectors(one, new lab.steering.hook.HookContext(k, 1))
                            .toDoubleArray();
                    double scale = 0;
                    for (double w : want) {
                        scale = Math.max(scale, Math.abs(w));
                    }
                    assertArrayEquals(want, single, 1e-9 * scale, (op.isLowRank() ? "low-rank" : "full")
                            + " one-token call, position " + k);
                    assertArrayEquals(want, java.util.Arrays.copyOfRange(many, k * d, (k + 1) * d), 1e-9 * scale,
                            (op.isLowRank() ? "low-rank" : "full") + " many-token call, position " + k);
                }
            }
        }
    }

    /** J_k x in plain Java: the stored rows (full) or U diag(s) V^T x (low-rank), in double. */
    static double[] reference(SteeringOperator op, int k, double[] x) {
        int d = op.dim();
        double[] y = new double[d];
        if (!op.isLowRank()) {
            float[] j = op.full()[k];
            for (int r = 0; r < d; r++) {
                double acc = 0;
                for (int c = 0; c < d; c++) {
                    acc += (double) j[r * d + c] * x[c];
                }
                y[r] = acc;
            }
            return y;
        }
        int rank = op.lowRank().rank();
        float[] u = op.lowRank().u()[k];
        float[] s = op.lowRank().s()[k];
        float[] v = op.lowRank().v()[k];
        for (int q = 0; q < rank; q++) {
            double coeff = 0;
            for (int c = 0; c < d; c++) {
                coeff += (double) v[c * rank + q] * x[c];
            }
            coeff *= s[q];
            for (int r = 0; r < d; r++) {
                y[r] += u[r * rank + q] * coeff;
            }
        }
        return y;
    }

    @Test
    void lowRankFormKeepsTheEnergyAndSteersAlike() {
        SteeringOperator lr = OperatorBuilder.lowRank(dense, 0, 0.99);
        assertTrue(lr.lowRank().rank() <= dense.dim());
        assertTrue(lr.storedValues() < dense.storedValues() || lr.lowRank().rank() > dense.dim() / 2);
        SteeringOperator exact = OperatorBuilder.lowRank(dense, dense.dim(), 1.0);
        // full rank factors reproduce the dense operator's steering exactly up to float rounding
        assertArrayEquals(ids(steer(dense, 1.0, "Once upon a time", true)),
                ids(steer(exact, 1.0, "Once upon a time", true)));
        assertEquals(dense.tokens(), lr.tokens());
    }
}
