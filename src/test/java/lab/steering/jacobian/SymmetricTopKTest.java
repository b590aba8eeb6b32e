package lab.steering.jacobian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.QRDecomposition;
import org.junit.jupiter.api.Test;

/**
 * The tridiagonal top-k eigensolver against EJML's full decomposition. Tolerances: eigenvalues to 1e-12 of the
 * largest (both are backward stable: a few ulps of the norm, summed over m = 200 reflections); eigenvectors by their
 * own residual ||A x - lambda x|| <= 1e-11 ||A|| and orthogonality to 1e-10 (also within clusters, where single
 * vectors are not determined and EJML's cannot be compared one by one).
 */
class SymmetricTopKTest {

    /** A = Q diag(lambda) Q^T with a random orthogonal Q. */
    static double[] withSpectrum(double[] lambda, long seed) {
        int m = lambda.length;
        Random r = new Random(seed);
        DMatrixRMaj g = new DMatrixRMaj(m, m);
        for (int i = 0; i < g.data.length; i++) {
            g.data[i] = r.nextGaussian();
        }
        QRDecomposition<DMatrixRMaj> qr = DecompositionFactory_DDRM.qr(m, m);
        qr.decompose(g);
        DMatrixRMaj q = qr.getQ(null, false);
        DMatrixRMaj ql = q.copy();
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < m; j++) {
                ql.set(i, j, q.get(i, j) * lambda[j]);
            }
        }
        DMatrixRMaj a = new DMatrixRMaj(m, m);
        CommonOps_DDRM.multTransB(ql, q, a);
        for (int i = 0; i < m; i++) { // exactly symmetric
            for (int j = 0; j < i; j++) {
                double v = 0.5 * (a.get(i, j) + a.get(j, i));
                a.set(i, j, v);
                a.set(j, i, v);
            }
        }
        return a.data;
    }

    static void check(double[] a, int m, int k, String what) {
        SymmetricTopK.Pairs got = SymmetricTopK.top(a, m, k);
        SymmetricTopK.Pairs want = SymmetricTopK.full(a, m, k);
        double norm = Math.abs(want.values()[0]);
        for (int j = 0; j < k; j++) {
            assertEquals(want.values()[j], got.values()[j], 1e-12 * norm, what + " value " + j);
            double[] x = got.vectors()[j];
            double res = 0;
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int c = 0; c < m; c++) {
                    s += a[i * m + c] * x[c];
                }
                res += (s - got.values()[j] * x[i]) * (s - got.values()[j] * x[i]);
            }
            assertTrue(Math.sqrt(res) <= 1e-11 * norm, what + " residual " + j + ": " + Math.sqrt(res) / norm);
            for (int c = 0; c <= j; c++) {
                double dot = SymmetricTopK.dot(got.vectors()[c], x);
                assertEquals(c == j ? 1 : 0, dot, 1e-10, what + " orthonormality " + c + ", " + j);
            }
        }
    }

    @Test
    void topEigenpairsMatchTheFullDecompositionOnADecayingSpectrum() {
        int m = 200;
        double[] lambda = new double[m];
        for (int i = 0; i < m; i++) {
            lambda[i] = Math.pow(0.93, i);
        }
        check(withSpectrum(lambda, 1), m, 12, "decaying");
    }

    @Test
    void clusteredAndRepeatedEigenvaluesGiveOrthonormalVectors() {
        int m = 120;
        double[] lambda = new double[m];
        for (int i = 0; i < m; i++) {
            lambda[i] = i < 3 ? 5 : i < 6 ? 4 + 1e-9 * i : 1.0 / (1 + i); // a triple and a tight cluster of three
        }
        check(withSpectrum(lambda, 2), m, 8, "clustered");
    }

    @Test
    void rankDeficientGramMatrices() {
        int m = 90;
        double[] lambda = new double[m];
        for (int i = 0; i < 4; i++) {
            lambda[i] = 10 - i;
        }
        check(withSpectrum(lambda, 3), m, 8, "rank 4"); // four zero eigenvalues among the top 8
    }
}
