package lab.steering.jacobian;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import lab.steering.SharedModels;
import lab.steering.model.LanguageModel;
import lab.steering.model.Transformer;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The detached Jacobian (METHOD.md sections 1-3) on the real stories260K checkpoint and on a random GQA checkpoint
 * with an untied head, against the autograd oracle and the reconstruction identity.
 */
class DetachedJacobianTest {

    static LanguageModel stories;
    static LanguageModel tiny;
    @TempDir
    static Path tmp;

    @BeforeAll
    static void load() throws IOException {
        Path folder = TinyCheckpoint.llama().hidden(32).layers(3).heads(4).kvHeads(2).intermediate(48).vocab(64)
                .tied(false).seed(11).writeTo(tmp.resolve("tiny"));
        tiny = LanguageModel.load(folder, Device.cpu());
        if (SharedModels.present(SharedModels.STORIES_TEXT)) {
            stories = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
        }
    }

    @AfterAll
    static void close() {
        tiny.close();
        if (stories != null) {
            stories.close();
        }
    }

    List<LanguageModel> models() {
        List<LanguageModel> out = new ArrayList<>();
        out.add(tiny);
        if (stories != null) {
            out.add(stories);
        }
        return out;
    }

    static long[] prompt(LanguageModel m) {
        return m == stories ? m.tokenizer().encode("Once upon a time, there was a little") : new long[] {1, 5, 9, 33, 2, 17, 40};
    }

    static double maxRelDiff(JacobianStack a, JacobianStack b) {
        double max = 0;
        double scale = 0;
        for (int i = 0; i < a.tokens(); i++) {
            for (int k = 0; k < a.jacobian()[i].length; k++) {
                max = Math.max(max, Math.abs(a.jacobian()[i][k] - b.jacobian()[i][k]));
                scale = Math.max(scale, Math.abs(b.jacobian()[i][k]));
            }
        }
        return max / scale;
    }

    @Test
    void frozenForwardReproducesTheOrdinaryForwardBitForBit() {
        for (LanguageModel m : models()) {
            for (DataType dt : new DataType[] {DataType.FLOAT32, DataType.FLOAT64}) {
                Transformer tf = m.transformer(dt);
                try (NDManager nd = m.manager().newSubManager(); NDScope s = new NDScope()) {
                    s.suppressNotUsedWarning();
                    FrozenNetwork f = FrozenNetwork.record(tf, nd, prompt(m));
                    var frozen = f.finalNorm(f.layers(f.embeddings(), 0, tf.config().numLayers()));
                    assertArrayEquals(f.output.toType(DataType.FLOAT64, false).toDoubleArray(),
                            frozen.toType(DataType.FLOAT64, false).toDoubleArray(), 0.0, m.id() + " " + dt);
                }
            }
        }
    }

    @Test
    void detachedReconstructionIsExactToFloat64AndFloat32Precision() {
        for (LanguageModel m : models()) {
            Target out = Target.output(m.config().numLayers());
            JacobianStack j64 = JacobianEngine.full(m, prompt(m), DataType.FLOAT64, out, 64L << 20, r -> { });
            JacobianStack j32 = JacobianEngine.full(m, prompt(m), DataType.FLOAT32, out, 64L << 20, r -> { });
            System.out.printf("%s detached relErr float64 %.3e float32 %.3e%n", m.id(), j64.relativeError(),
                    j32.relativeError());
            assertTrue(j64.relativeError() <= 1e-12, m.id() + " float64 relErr " + j64.relativeError());
            assertTrue(j32.relativeError() <= 1e-5, m.id() + " float32 relErr " + j32.relativeError());
        }
    }

    @Test
    void ordinaryJacobianDoesNotReconstructTheOutput() {
        for (LanguageModel m : models()) {
            JacobianStack ord = JacobianEngine.ordinary(m, prompt(m), DataType.FLOAT64);
            JacobianStack det = JacobianEngine.full(m, prompt(m), DataType.FLOAT64,
                    Target.output(m.config().numLayers()), 64L << 20, r -> { });
            System.out.printf("%s ordinary relErr %.3e%n", m.id(), ord.relativeError());
            assertArrayEquals(det.output(), ord.output(), 1e-12, "both see the same output y");
            assertTrue(ord.relativeError() > 1e-2, m.id() + " ordinary relErr " + ord.relativeError());
        }
    }

    @Test
    void ordinaryJacobiansOnSeveralThreadsAtOnceAgreeWithOneAlone() throws Exception {
        // DJL allows one GradientCollector per JVM at a time; analyses on worker threads must take turns, not fail
        long[] ids = prompt(tiny);
        JacobianStack alone = JacobianEngine.ordinary(tiny, ids, DataType.FLOAT64, 1L << 12); // many row batches
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(3);
        try {
            List<java.util.concurrent.Future<JacobianStack>> runs = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                runs.add(pool.submit(() -> JacobianEngine.ordinary(tiny, ids, DataType.FLOAT64, 1L << 12)));
            }
            for (java.util.concurrent.Future<JacobianStack> run : runs) {
                JacobianStack j = run.get();
                for (int i = 0; i < ids.length; i++) {
                    assertArrayEquals(alone.jacobian()[i], j.jacobian()[i], 0.0, "token " + i);
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void transposePassEqualsTheAutogradOracleForEveryTargetKind() {
        for (LanguageModel m : models()) {
            int layers = m.config().numLayers();
            List<Target> targets = new ArrayList<>();
            targets.add(Target.output(layers));
            for (Target.Mode mode : Target.Mode.values()) {
                for (Target.Component comp : Target.Component.values()) {
                    targets.add(new Target(1, mode, comp));
                    targets.add(new Target(layers - 1, mode, comp));
                }
            }
            for (Target t : targets) {
                JacobianStack fast = JacobianEngine.full(m, prompt(m), DataType.FLOAT64, t, 1L << 16, r -> { });
                JacobianStack oracle = JacobianEngine.autogradOracle(m, prompt(m), DataType.FLOAT64, t);
                double diff = maxRelDiff(fast, oracle);
                assertTrue(diff <= 1e-10, m.id() + " " + t + ": transpose vs autograd " + diff);
                assertTrue(fast.relativeError() <= 1e-12, m.id() + " " + t + ": relErr " + fast.relativeError());
                assertArrayEquals(oracle.output(), fast.output(), 1e-12);
            }
        }
    }

    @Test
    void perRowAutogradEqualsTheTransposePass() {
        LanguageModel m = tiny;
        Target out = Target.output(m.config().numLayers());
        JacobianStack fast = JacobianEngine.full(m, prompt(m), DataType.FLOAT64, out, 1L << 30, r -> { });
        for (boolean keepGraph : new boolean[] {true, false}) {
            assertRowsEqual(fast, JacobianEngine.autogradPerRow(m, prompt(m), DataType.FLOAT64, out, keepGraph));
        }
    }

    private static void assertRowsEqual(JacobianStack fast, double[][] rows) {
        for (int i = 0; i < rows.length; i++) {
            double scale = 0;
            double diff = 0;
            for (int k = 0; k < rows[i].length; k++) {
                scale = Math.max(scale, Math.abs(fast.jacobian()[i][k]));
                diff = Math.max(diff, Math.abs(rows[i][k] - fast.jacobian()[i][k]));
            }
            assertTrue(diff <= 1e-10 * scale, "token " + i + ": per-row autograd vs transpose " + diff / scale);
        }
    }

    @Test
    void chunkingDoesNotChangeTheResult() {
        LanguageModel m = tiny;
        Target out = Target.output(m.config().numLayers());
        JacobianStack one = JacobianEngine.full(m, prompt(m), DataType.FLOAT64, out, 1, r -> { });
        JacobianStack all = JacobianEngine.full(m, prompt(m), DataType.FLOAT64, out, 1L << 30, r -> { });
        assertEquals(0, maxRelDiff(one, all), 1e-14);
        // several chunks that share the per-token MLP matrices (they fit half of this budget; a chunk is ~20 rows)
        long budget = 2 * FrozenNetwork.mlpMatrixBytes(m.config(), prompt(m).length, DataType.FLOAT64) + 1024;
        assertTrue(FrozenNetwork.mlpMatricesFit(m.config(), prompt(m).length, DataType.FLOAT64, budget));
        assertTrue(JacobianEngine.chunkSize(m, prompt(m).length, DataType.FLOAT64, budget) < m.config().hiddenSize());
        int arrays = m.manager().getManagedArrays().size();
        JacobianStack shared = JacobianEngine.full(m, prompt(m), DataType.FLOAT64, out, budget, r -> { });
        assertEquals(0, maxRelDiff(one, shared), 1e-14);
        assertEquals(arrays, m.manager().getManagedArrays().size(), "arrays left in the model's manager");
    }
}
