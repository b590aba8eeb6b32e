package lab.steering.jacobian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;
import org.junit.jupiter.api.Test;

/**
 * {@link Svd} against naive computations on random matrices: the explicit d x T*d concatenation decomposed by EJML's
 * SVD, sums of squares for ||.||_F^2, and the defining identities J v = sigma u, J^T u = sigma v.
 *
 * <p>Tolerances: the matrices are Gaussian (sigma_max / sigma_8 below 3, top gaps above 1 %), so both routes are
 * accurate to a few hundred eps; 1e-10 relative leaves a wide margin and still catches any ordering, scaling or
 * transposition mistake (those give errors of order 1).
 */
class SvdTest {

    static final double TOL = 1e-10;

    static double[][] randomStack(int t, int d, long seed) {
        Random r = new Random(seed);
        double[][] out = new double[t][d * d];
        for (double[] m : out) {
            for (int i = 0; i < m.length; i++) {
                m[i] = r.nextGaussian();
            }
        }
        return out;
    }

    /** The explicit d x (T*d) matrix [J_0 ... J_{T-1}]. */
    static DMatrixRMaj concat(double[][] stack, int d) {
        int t = stack.length;
        DMatrixRMaj m = new DMatrixRMaj(d, t * d);
        for (int i = 0; i < t; i++) {
            for (int r = 0; r < d; r++) {
                for (int k = 0; k < d; k++) {
                    m.set(r, i * d + k, stack[i][r * d + k]);
                }
            }
        }
        return m;
    }

    /** Singular values (descending) and left vectors (columns) of a matrix, by EJML's SVD directly. */
    static Object[] naiveSvd(DMatrixRMaj m) {
        SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(m.numRows, m.numCols,
                true, false, true);
        assertTrue(svd.decompose(m.copy()));
        double[] w = svd.getSingularValues().clone();
        DMatrixRMaj u = svd.getU(null, false);
        Integer[] order = new Integer[w.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Double.compare(w[b], w[a]));
        double[] s = new double[w.length];
        double[][] us = new double[w.length][m.numRows];
        for (int j = 0; j < w.length; j++) {
            s[j] = w[order[j]];
            for (int r = 0; r < m.numRows; r++) {
                us[j][r] = u.get(r, order[j]);
            }
        }
        return new Object[] {s, us};
    }

    static double[] matVec(double[] m, int d, double[] x, boolean transpose) {
        double[] y = new double[d];
        for (int r = 0; r < d; r++) {
            for (int k = 0; k < d; k++) {
                y[transpose ? k : r] += m[r * d + k] * x[transpose ? r : k];
            }
        }
        return y;
    }

    @Test
    void perTokenTopKSatisfiesTheSvdIdentitiesAndIsDescending() {
        int d = 24;
        int k = 8;
        double[] j = randomStack(1, d, 3)[0];
        Spectrum s = Svd.top(j, d, k);
        assertEquals(k, s.singularValues().length);
        double smax = s.singularValues()[0];
        for (int a = 0; a < k; a++) {
            if (a > 0) {
                assertTrue(s.singularValues()[a] <= s.singularValues()[a - 1], "descending");
            }
            double[] jv = matVec(j, d, s.v()[a], false);
            double[] jtu = matVec(j, d, s.u()[a], true);
            for (int r = 0; r < d; r++) {
                assertEquals(s.singularValues()[a] * s.u()[a][r], jv[r], TOL * smax, "J v = sigma u");
                assertEquals(s.singularValues()[a] * s.v()[a][r], jtu[r], TOL * smax, "J^T u = sigma v");
            }
            for (int b = 0; b <= a; b++) {
                assertEquals(a == b ? 1 : 0, Svd.dot(s.u()[a], s.u()[b]), TOL, "U orthonormal");
                assertEquals(a == b ? 1 : 0, Svd.dot(s.v()[a], s.v()[b]), TOL, "V orthonormal");
            }
        }
        assertEquals(Svd.sumOfSquares(j), s.frobeniusSq(), 0.0, "exact Frobenius");
        assertTrue(s.exact());
        // all d values: sum sigma^2 = ||J||_F^2, and the top k agree with the Gram route (an independent algorithm)
        Spectrum all = Svd.top(j, d, d);
        double sum = 0;
        for (double x : all.singularValues()) {
            sum += x * x;
        }
        assertEquals(s.frobeniusSq(), sum, TOL * s.frobeniusSq());
        Spectrum gram = Svd.concatenated(new double[][] {j}, d, k);
        for (int a = 0; a < k; a++) {
            assertEquals(s.singularValues()[a], gram.singularValues()[a], TOL * smax);
        }
    }

    @Test
    void perTokenSvdDoesNotModifyTheJacobian() {
        double[] j = randomStack(1, 16, 5)[0];
        double[] copy = j.clone();
        Svd.top(j, 16, 4);
        Svd.concatenated(new double[][] {j}, 16, 4);
        assertTrue(java.util.Arrays.equals(copy, j));
    }

    @Test
    void concatenatedMatchesTheSvdOfTheExplicitMatrix() {
        int d = 20;
        int t = 6;
        int k = 8;
        double[][] stack = randomStack(t, d, 7);
        Spectrum s = Svd.concatenated(stack, d, k);
        DMatrixRMaj m = concat(stack, d);
        Object[] naive = naiveSvd(m);
        double[] ns = (double[]) naive[0];
        double[][] nu = (double[][]) naive[1];
        assertNull(s.v(), "right vectors of the concatenation are not formed");
        assertEquals(k, s.singularValues().length);
        for (int a = 0; a < k; a++) {
            assertEquals(ns[a], s.singularValues()[a], TOL * ns[0], "sigma_" + a);
            assertEquals(1.0, Math.abs(Svd.dot(nu[a], s.u()[a])), 1e-9, "u_" + a + " up to sign");
        }
        double frob = 0;
        for (int r = 0; r < d; r++) {
            for (int c = 0; c < t * d; c++) {
                frob += m.get(r, c) * m.get(r, c);
            }
        }
        assertEquals(frob, s.frobeniusSq(), 1e-12 * frob);
        assertEquals(frob / (ns[0] * ns[0]), s.stableRank(), TOL * s.stableRank());
        assertTrue(s.stableRank() >= 1);
    }

    @Test
    void concatenatedOfARankOneStackHasStableRankOne() {
        int d = 10;
        Random r = new Random(1);
        double[] u = new double[d];
        for (int i = 0; i < d; i++) {
            u[i] = r.nextGaussian();
        }
        double[][] stack = new double[3][d * d];
        for (int i = 0; i < 3; i++) {
            for (int a = 0; a < d; a++) {
                for (int b = 0; b < d; b++) {
                    stack[i][a * d + b] = u[a] * (i + 1) * Math.cos(b + i);
                }
            }
        }
        Spectrum s = Svd.concatenated(stack, d, 3);
        assertEquals(1.0, s.stableRank(), 1e-12);
        assertEquals(0, s.singularValues()[1], 1e-6 * s.singularValues()[0]);
    }

    @Test
    void orientFlipsEachPairSoThatUPointsAlongTheDirection() {
        int d = 12;
        double[] j = randomStack(1, d, 9)[0];
        double[] direction = randomStack(1, d, 10)[0];
        direction = java.util.Arrays.copyOf(direction, d);
        Spectrum s = Svd.top(j, d, 5);
        Spectrum o = Svd.orient(s, direction);
        for (int a = 0; a < 5; a++) {
            assertTrue(Svd.dot(o.u()[a], direction) > 0);
            double sign = Math.signum(Svd.dot(s.u()[a], direction));
            for (int r = 0; r < d; r++) {
                assertEquals(sign * s.u()[a][r], o.u()[a][r], 0.0);
                assertEquals(sign * s.v()[a][r], o.v()[a][r], 0.0, "v flips with u");
            }
        }
        assertEquals(s.singularValues()[0], o.singularValues()[0], 0.0);
    }
    @Test
    void sideBySideDecompositionsEqualOneAtATime() {
        Random r = new Random(7);
        int d = 12;
        double[][] ms = new double[5][d * d];
        for (double[] m : ms) {
            for (int i = 0; i < m.length; i++) {
                m[i] = r.nextGaussian();
            }
        }
        Spectrum[] both = Svd.topEachAndConcatenated(ms, d, 3, 4);
        Spectrum[] grams = Svd.concatenatedEachAndAll(ms, d, 1, 4);
        assertEquals(ms.length + 1, both.length);
        for (int i = 0; i < ms.length; i++) {
            assertSame(Svd.top(ms[i], d, 3), both[i]);
            assertSame(Svd.concatenated(new double[][] {ms[i]}, d, 1), grams[i]);
        }
        assertSame(Svd.concatenated(ms, d, 4), both[ms.length]);
        assertSame(Svd.concatenated(ms, d, 4), grams[ms.length]);
    }

    private static void assertSame(Spectrum expected, Spectrum actual) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(expected.singularValues(), actual.singularValues(), 0);
        for (int j = 0; j < expected.u().length; j++) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected.u()[j], actual.u()[j], 0);
        }
        assertEquals(expected.frobeniusSq(), actual.frobeniusSq(), 0);
    }
}
