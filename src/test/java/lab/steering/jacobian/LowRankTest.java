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

/** The matrix-free top-k against the SVD of the full stack (EJML, float64). */
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

    static void check(LanguageModel m, long[] ids, Target target) {
        int d = m.config().hiddenSize();
        JacobianStack full = JacobianEngine.full(m, ids, DataType.FLOAT64, target, 64L << 20, r -> { });
        LowRank.Result lr = LowRank.topK(m, ids, DataType.FLOAT64, target, LowRank.Settings.of(8), i -> { });
        for (int i = 0; i < ids.length; i++) {
            double[] want = singularValues(full.jacobian()[i], d, d);
            double[] got = lr.perToken().get(i).singularValues();
            for (int j = 0; j < 8; j++) {
                assertEquals(want[j], got[j], 1e-6 * want[j], m.id() + " token " + i + " sigma " + j);
            }
            // u and v are singular vectors: J v = sigma u
            double[] u = lr.perToken().get(i).u()[0];
            double[] v = lr.perToken().get(i).v()[0];
            double err = 0;
            for (int r = 0; r < d; r++) {
                double s = 0;
                for (int k = 0; k < d; k++) {
                    s += full.jacobian()[i][r * d + k] * v[k];
                }
                err = Math.max(err, Math.abs(s - got[0] * u[r]));
            }
            assertTrue(err < 1e-6 * got[0], "J v = sigma u, error " + err);
        }
        // concatenated matrix [J_0 ... J_{T-1}] (d x T d)
        double[] concat = new double[d * d * ids.length];
        for (int r = 0; r < d; r++) {
            for (int i = 0; i < ids.length; i++) {
                System.arraycopy(full.jacobian()[i], r * d, concat, r * d * ids.length + i * d, d);
            }
        }
        double[] want = singularValues(concat, d, d * ids.length);
        for (int j = 0; j < 8; j++) {
            assertEquals(want[j], lr.combined().singularValues()[j], 1e-6 * want[j], m.id() + " combined sigma " + j);
        }
        double[] recon = full.reconstruct();
        for (int r = 0; r < d; r++) {
            assertEquals(recon[r], lr.reconstruction()[r], 1e-10 * JacobianStack.norm(recon));
        }
        System.out.printf("%s %s: iterations per-token %d, combined %d%n", m.id(), target, lr.iterations()[0],
                lr.iterations()[1]);
    }

    @Test
    void topEightMatchTheFullSvdOnARandomCheckpoint(@TempDir Path tmp) throws IOException {
        Path folder = TinyCheckpoint.llama().hidden(48).layers(2).heads(4).kvHeads(2).intermediate(64).vocab(64)
                .seed(3).writeTo(tmp.resolve("tiny"));
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            check(m, new long[] {1, 7, 9, 22, 40}, Target.output(2));
            check(m, new long[] {1, 7, 9, 22, 40}, new Target(1, Target.Mode.CUMULATIVE, Target.Component.MLP));
        }
    }

    @Test
    void topEightMatchTheFullSvdOnStories260K() {
        try (LanguageModel m = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu())) {
            check(m, m.tokenizer().encode("Once upon a time, there was"), Target.output(5));
        }
    }
}
