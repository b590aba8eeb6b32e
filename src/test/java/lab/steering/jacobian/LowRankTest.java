package lab.steering.jacobian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import java.io.IOException;
import java.nio.file.Path;
import lab.steering.SharedModels;
import lab.steering.model.LanguageModel;
import lab.steering.testing.TinyCheckpoint;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The matrix-free top-k against the SVD of the full stack (EJML, float64). Tolerances: values to 1e-6 of their own
 * size and {@code J v = sigma u} to 1e-6 of sigma_1, which {@link #strict} asks of the iteration (the values are in
 * fact much closer: their error is about the residual squared over the gap). Each case runs with the default
 * settings (where T k is large against d the basis is completed at once: exact) and with completion off, which
 * exercises the iteration itself: residual expansion, restarts and token groups.
 */
class LowRankTest {

    /** All singular values of a d x n matrix, descending. */
    static double[] singularValues(double[] data, int rows, int cols) {
        SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(rows, cols, false, false, true);
        svd.decompose(new DMatrixRMaj(rows, cols, true, data.clone()));
        double[] s = svd.getSingularValues().clone();
        java.util.Arrays.sort(s);
        double[] out = new double[s.length];
        for (int i = 0; i < s.length; i++) {
            out[i] = s[s.length - 1 - i];
        }
        return out;
    }

    /** Values to 1e-6 and residuals within 1e-6 of sigma_1 (the default accepts residuals up to 1e-3). */
    static LowRank.Settings strict(int k) {
        return LowRank.Settings.of(k).withTolerance(1e-6, 1e-6);
    }

    static LowRank.Result check(LanguageModel m, long[] ids, Target target) {
        return check(m, ids, target, strict(8));
    }

    static LowRank.Result check(LanguageModel m, long[] ids, Target target, LowRank.Settings settings) {
        int d = m.config().hiddenSize();
        int k = settings.k();
        JacobianStack full = JacobianEngine.full(m, ids, DataType.FLOAT64, target, 64L << 20, r -> { });
        LowRank.Result lr = LowRank.topK(m, ids, DataType.FLOAT64, target, settings);
        assertTrue(lr.stats().converged(), "converged: " + lr.stats());
        for (int i = 0; i < ids.length; i++) {
            double[] want = singularValues(full.jacobian()[i], d, d);
            double[] got = lr.perToken().get(i).singularValues();
            for (int j = 0; j < k; j++) {
                assertEquals(want[j], got[j], 1e-6 * want[j], m.id() + " token " + i + " sigma " + j);
            }
            // u and v are singular vectors: J v = sigma u
            double[] u = lr.perToken().get(i).u()[0];
            double[] v = lr.perToken().get(i).v()[0];
            double err = 0;
            for (int r = 0; r < d; r++) {
                double s = 0;
                for (int c = 0; c < d; c++) {
                    s += full.jacobian()[i][r * d + c] * v[c];
                }
                err = Math.max(err, Math.abs(s - got[0] * u[r]));
            }
            assertTrue(err <= 1e-6 * got[0], "J v = sigma u, error " + err); // J_i = 0 (out of a window): 0 <= 0
        }
        // concatenated matrix [J_0 ... J_{T-1}] (d x T d)
        double[] concat = new double[d * d * ids.length];
        for (int r = 0; r < d; r++) {
            for (int i = 0; i < ids.length; i++) {
                System.arraycopy(full.jacobian()[i], r * d, concat, r * d * ids.length + i * d, d);
            }
        }
        double[] want = singularValues(concat, d, d * ids.length);
        for (int j = 0; j < k; j++) {
            assertEquals(want[j], lr.combined().singularValues()[j], 1e-6 * want[j], m.id() + " combined sigma " + j);
        }
        double[] recon = full.reconstruct();
        for (int r = 0; r < d; r++) {
            assertEquals(recon[r], lr.reconstruction()[r], 1e-10 * JacobianStack.norm(recon));
        }
        System.out.printf("%s %s k=%d: %s%n", m.id(), target, k, lr.stats());
        return lr;
    }

    @Test
    void topEightMatchTheFullSvdOnARandomCheckpoint(@TempDir Path tmp) throws IOException {
        Path folder = TinyCheckpoint.llama().hidden(48).layers(2).heads(4).kvHeads(2).intermediate(64).vocab(64)
                .seed(3).writeTo(tmp.resolve("tiny"));
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            long[] ids = {1, 7, 9, 22, 40};
            assertEquals(48, check(m, ids, Target.output(2)).stats().basis(), "T k >= d: the complete basis");
            check(m, ids, new Target(1, Target.Mode.CUMULATIVE, Target.Component.MLP));
            // the iteration alone (k = 3: 5 tokens x 5 Ritz pairs + 5 against d = 48): it restarts
            LowRank.Settings it = strict(3).withCompletion(false);
            LowRank.Result r = check(m, ids, Target.output(2), it);
            assertTrue(r.stats().basis() < 48 || r.stats().restarts() > 0, "iterated: " + r.stats());
            check(m, ids, new Target(2, Target.Mode.LAYERWISE, Target.Component.ATTN), it);
            // a basis budget too small for all five tokens side by side: token groups, the combined on its own
            LowRank.Result g = check(m, ids, Target.output(2), it.withBasisBytes(2L * 2 * 48 * 8 * 20));
            assertTrue(g.stats().groups() > 1, "groups: " + g.stats());
        }
    }

    @Test
    void theIterationConvergesOnAWiderCheckpointWithoutCompletingTheBasis(@TempDir Path tmp) throws IOException {
        Path folder = TinyCheckpoint.llama().hidden(256).layers(2).heads(4).kvHeads(2).intermediate(320).vocab(64)
                .seed(5).writeTo(tmp.resolve("wide"));
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            // T (k + 2) + k + 2 = 24 against d = 256: iterated under the default rule, not completed
            LowRank.Result r = check(m, new long[] {1, 7, 9, 22, 40}, Target.output(2), strict(2));
            assertTrue(r.stats().basis() < 256, "not completed: " + r.stats());
            assertTrue(r.stats().residual() <= 1e-6, "residual " + r.stats());
        }
    }

    @Test
    void topEightMatchTheFullSvdOnStories260K() {
        try (LanguageModel m = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu())) {
            long[] ids = m.tokenizer().encode("Once upon a time, there was");
            check(m, ids, Target.output(5));
            check(m, ids, Target.output(5), strict(2).withCompletion(false));
        }
    }
}
