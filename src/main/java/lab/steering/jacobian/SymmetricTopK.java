package lab.steering.jacobian;

import java.util.Random;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.decomposition.hessenberg.TridiagonalDecompositionHouseholder_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;

/**
 * The top-k eigenpairs of a symmetric positive semi-definite m x m matrix (a Gram matrix of {@link LowRank}'s
 * Rayleigh-Ritz step), in double: Householder tridiagonalisation (EJML), the k largest eigenvalues of the tridiagonal
 * by bisection on Sturm counts, their eigenvectors by inverse iteration on the tridiagonal (pivoted LU; vectors of
 * close eigenvalues re-orthogonalised against each other), and the reflectors applied to those k vectors only. That
 * is about {@code 4/3 m^3 + O(k m^2)} operations where a full eigendecomposition with vectors costs several times
 * more (at m = 256 EJML's took about 4x as long); small or nearly full problems use EJML's full decomposition.
 *
 * <p>Accuracy: eigenvalues to a few ulps of the matrix norm, eigenvectors with residual {@code ||A x - lambda x||} of
 * the same order (checked against EJML in SymmetricTopKTest).
 */
final class SymmetricTopK {

    /** Eigenvalues, descending, and their unit eigenvectors ({@code vectors[j]} has length m). */
    record Pairs(double[] values, double[][] vectors) {
    }

    private SymmetricTopK() {
    }

    /** Below this size, or for k above a third of m, EJML's full decomposition is as fast. */
    static final int SMALL = 48;

    /**
     * @param a row-major m x m, symmetric (only read)
     * @param k how many, 1..m
     */
    static Pairs top(double[] a, int m, int k) {
        k = Math.min(k, m);
        if (m <= SMALL || 3 * k > m) {
            return full(a, m, k);
        }
        Tridiagonal tri = new Tridiagonal();
        DMatrixRMaj work = new DMatrixRMaj(m, m, true, a.clone()); // decompose() overwrites its input
        tri.decompose(work);
        double[] diag = new double[m];
        double[] off = new double[m];
        tri.getDiagonal(diag, off);
        double norm = 0; // Gershgorin bound of |T|
        double lo = Double.MAX_VALUE;
        double hi = -Double.MAX_VALUE;
        for (int i = 0; i < m; i++) {
            double r = (i > 0 ? Math.abs(off[i - 1]) : 0) + (i < m - 1 ? Math.abs(off[i]) : 0);
            lo = Math.min(lo, diag[i] - r);
            hi = Math.max(hi, diag[i] + r);
        }
        norm = Math.max(Math.abs(lo), Math.abs(hi));
        if (norm == 0) { // the zero matrix: any orthonormal vectors
            return full(a, m, k);
        }
        double[] values = new double[k];
        for (int j = 0; j < k; j++) {
            values[j] = bisect(diag, off, m, m - 1 - j, lo, hi, norm);
        }
        double[][] vectors = new double[k][];
        Random rng = new Random(17);
        double cluster = 1e-3 * norm; // LAPACK's stein: vectors of eigenvalues closer than this are kept orthogonal
        double eps = Math.ulp(1.0);
        for (int j = 0; j < k; j++) {
            int first = j; // the cluster of values[j] among those already found
            while (first > 0 && values[first - 1] - values[first] < cluster) {
                first--;
            }
            // a shift nudged apart from its neighbours in a cluster so that the factorisations differ
            double shift = values[j] + (j - first) * 10 * eps * norm;
            double[] x = new double[m];
            for (int i = 0; i < m; i++) {
                x[i] = rng.nextDouble() - 0.5;
            }
            Lu lu = new Lu(diag, off, m, shift, eps * norm);
            for (int it = 0; it < 4; it++) {
                normalise(x);
                lu.solve(x);
                for (int c = first; c < j; c++) { // the tridiagonal's vectors (not yet transformed back)
                    double dot = dot(vectors[c], x);
                    for (int i = 0; i < m; i++) {
                        x[i] -= dot * vectors[c][i];
                    }
                }
            }
            normalise(x);
            vectors[j] = x;
        }
        for (int j = 0; j < k; j++) {
            vectors[j] = tri.applyQ(vectors[j]);
        }
        return new Pairs(values, vectors);
    }

    /** EJML's full symmetric eigendecomposition, top k. */
    static Pairs full(double[] a, int m, int k) {
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(m, true, true);
        if (!eig.decompose(new DMatrixRMaj(m, m, true, a.clone()))) {
            throw new ArithmeticException("symmetric eigendecomposition did not converge (" + m + " x " + m + ")");
        }
        int n = eig.getNumberOfEigenvalues();
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (p, q) -> Double.compare(eig.getEigenvalue(q).getReal(),
                eig.getEigenvalue(p).getReal()));
        double[] values = new double[k];
        double[][] vectors = new double[k][];
        for (int j = 0; j < k; j++) {
            values[j] = eig.getEigenvalue(order[j]).getReal();
            vectors[j] = eig.getEigenVector(order[j]).getData().clone();
            normalise(vectors[j]);
        }
        return new Pairs(values, vectors);
    }

    /**
     * The eigenvalue with {@code index} eigenvalues below it (0 = smallest) of the tridiagonal (diag, off), by
     * bisection on the Sturm count, to about two ulps of the norm.
     */
    private static double bisect(double[] diag, double[] off, int m, int index, double lo, double hi, double norm) {
        double tol = 2 * Math.ulp(norm);
        for (int it = 0; it < 200 && hi - lo > tol; it++) {
            double mid = 0.5 * (lo + hi);
            if (below(diag, off, m, mid, norm) > index) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return 0.5 * (lo + hi);
    }

    /** How many eigenvalues of the tridiagonal are below x (the negative pivots of T - x I = L D L^T). */
    private static int below(double[] diag, double[] off, int m, double x, double norm) {
        int count = 0;
        double q = 1;
        double tiny = Double.MIN_NORMAL * Math.max(1, norm);
        for (int i = 0; i < m; i++) {
            double e2 = i == 0 ? 0 : off[i - 1] * off[i - 1];
            q = diag[i] - x - (i == 0 ? 0 : e2 / q);
            if (q == 0) {
                q = -tiny;
            }
            if (q < 0) {
                count++;
            }
        }
        return count;
    }

    /** LU with partial pivoting of the tridiagonal T - shift I (U has two super-diagonals), and its solve. */
    private static final class Lu {
        final int n;
        final double[] l;    // multipliers
        final double[] d;    // U's diagonal
        final double[] u1;   // U's first super-diagonal
        final double[] u2;   // U's second super-diagonal
        final boolean[] swap;

        Lu(double[] diag, double[] off, int n, double shift, double floor) {
            this.n = n;
            l = new double[n];
            d = new double[n];
            u1 = new double[n];
            u2 = new double[n];
            swap = new boolean[n];
            for (int i = 0; i < n; i++) {
                d[i] = diag[i] - shift;
                if (i < n - 1) {
                    u1[i] = off[i];
                }
            }
            double[] sub = off.clone(); // sub-diagonal: T is symmetric
            for (int i = 0; i < n - 1; i++) {
                if (Math.abs(d[i]) >= Math.abs(sub[i])) {
                    double f = d[i] == 0 ? 0 : sub[i] / d[i];
                    l[i] = f;
                    d[i + 1] -= f * u1[i];
                } else { // rows i and i + 1 swapped
                    double f = d[i] / sub[i];
                    d[i] = sub[i];
                    l[i] = f;
                    double t = u1[i];
                    u1[i] = d[i + 1];
                    d[i + 1] = t - f * d[i + 1];
                    if (i < n - 2) {
                        u2[i] = u1[i + 1];
                        u1[i + 1] = -f * u1[i + 1];
                    }
                    swap[i] = true;
                }
            }
            for (int i = 0; i < n; i++) { // exact singularity: inverse iteration only needs a tiny pivot
                if (Math.abs(d[i]) < floor) {
                    d[i] = d[i] < 0 ? -floor : floor;
                }
            }
        }

        /** x <- (T - shift I)^-1 x. */
        void solve(double[] x) {
            for (int i = 0; i < n - 1; i++) {
                if (swap[i]) {
                    double t = x[i];
                    x[i] = x[i + 1];
                    x[i + 1] = t - l[i] * x[i];
                } else {
                    x[i + 1] -= l[i] * x[i];
                }
            }
            x[n - 1] /= d[n - 1];
            if (n > 1) {
                x[n - 2] = (x[n - 2] - u1[n - 2] * x[n - 1]) / d[n - 2];
            }
            for (int i = n - 3; i >= 0; i--) {
                x[i] = (x[i] - u1[i] * x[i + 1] - u2[i] * x[i + 2]) / d[i];
            }
            double max = 0;
            for (double v : x) {
                max = Math.max(max, Math.abs(v));
            }
            if (max > 1e100) { // keep the iterate finite: only its direction matters
                for (int i = 0; i < n; i++) {
                    x[i] /= max;
                }
            }
        }
    }

    /**
     * EJML's Householder tridiagonalisation, whose reflectors are applied to single vectors here: T = Q^T A Q with
     * Q = H_1 ... H_{m-1}, H_j = I - gamma_j w_j w_j^T, w_j stored in row j - 1 of the work matrix from column j + 1
     * on (w_j[j] = 1, zero before).
     */
    private static final class Tridiagonal extends TridiagonalDecompositionHouseholder_DDRM {
        double[] applyQ(double[] x) {
            double[] y = x.clone();
            double[] t = QT.data;
            for (int j = N - 1; j >= 1; j--) {
                double g = gammas[j];
                if (g == 0) {
                    continue;
                }
                int row = (j - 1) * N;
                double dot = y[j];
                for (int i = j + 1; i < N; i++) {
                    dot += t[row + i] * y[i];
                }
                dot *= g;
                y[j] -= dot;
                for (int i = j + 1; i < N; i++) {
                    y[i] -= dot * t[row + i];
                }
            }
            return y;
        }
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    static void normalise(double[] x) {
        double n = Math.sqrt(dot(x, x));
        if (n > 0) {
            for (int i = 0; i < x.length; i++) {
                x[i] /= n;
            }
        }
    }
}
