package lab.steering.jacobian;

import java.util.Arrays;
import java.util.Comparator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.IntFunction;
import java.util.function.Supplier;
import java.util.stream.IntStream;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

/**
 * Dense top-k SVDs of materialised Jacobians (METHOD.md section 4), in double with EJML: per token J_i, and the
 * token-concatenated M = [J_0 ... J_{T-1}] (d x T*d) through its Gram matrix M M^T = sum_i J_i J_i^T.
 * The authors use sklearn's randomized_svd on a float32 copy; this is the exact decomposition of the double stack.
 *
 * <p>Plain arrays only. Matrices are row-major d x d, as in {@link JacobianStack}.
 */
public final class Svd {

    private Svd() {
    }

    /**
     * Top-k singular triplets of one d x d matrix (row-major), descending; frobeniusSq is the exact sum of squares
     * of the entries.
     */
    public static Spectrum top(double[] matrix, int d, int k) {
        if (matrix.length != d * d) {
            throw new IllegalArgumentException(matrix.length + " values for a " + d + " x " + d + " matrix");
        }
        k = Math.min(k, d);
        SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(d, d, true, true, true);
        DMatrixRMaj a = new DMatrixRMaj(d, d, true, matrix); // a copy: decompose() may overwrite its input
        if (!svd.decompose(a)) {
            throw new ArithmeticException("SVD did not converge (" + d + " x " + d + ")");
        }
        double[] w = svd.getSingularValues();
        DMatrixRMaj u = svd.getU(null, false); // (d, n): columns are left vectors
        DMatrixRMaj v = svd.getV(null, false); // (d, n): columns are right vectors
        Integer[] order = descending(w, svd.numberOfSingularValues());
        double[] s = new double[k];
        double[][] uk = new double[k][];
        double[][] vk = new double[k][];
        for (int j = 0; j < k; j++) {
            int c = order[j];
            s[j] = w[c];
            uk[j] = column(u, c);
            vk[j] = column(v, c);
        }
        return new Spectrum(s, uk, vk, sumOfSquares(matrix), true);
    }

    /**
     * {@link #top} of each matrix, then {@link #concatenated} of all of them with {@code kAll} values: the
     * decompositions are independent single-threaded Java, so they run side by side on the common fork-join pool
     * and the calling thread.
     */
    public static Spectrum[] topEachAndConcatenated(double[][] matrices, int d, int k, int kAll) {
        return eachAndAll(matrices.length, i -> top(matrices[i], d, k), () -> concatenated(matrices, d, kAll));
    }

    /** As {@link #topEachAndConcatenated}, each matrix's top {@code kEach} also from its Gram matrix. */
    public static Spectrum[] concatenatedEachAndAll(double[][] matrices, int d, int kEach, int kAll) {
        return eachAndAll(matrices.length, i -> concatenated(new double[][] {matrices[i]}, d, kEach),
                () -> concatenated(matrices, d, kAll));
    }

    private static Spectrum[] eachAndAll(int n, IntFunction<Spectrum> perMatrix, Supplier<Spectrum> all) {
        CompletableFuture<Spectrum> whole = CompletableFuture.supplyAsync(all);
        Spectrum[] each = IntStream.range(0, n).parallel().mapToObj(perMatrix).toArray(Spectrum[]::new);
        Spectrum[] out = Arrays.copyOf(each, n + 1);
        try {
            out[n] = whole.join();
        } catch (CompletionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : e;
        }
        return out;
    }

    /**
     * Top-k singular values and left vectors of M = [J_0 ... J_{T-1}] (d x T*d) from the symmetric eigendecomposition
     * of its Gram matrix G = M M^T = sum_i J_i J_i^T: sigma_j = sqrt(lambda_j), u_j the eigenvectors; the right
     * vectors (in T*d) are not formed ({@code v = null}). frobeniusSq = sum of squares of every entry (exact).
     *
     * <p>Squaring costs precision only at the bottom of the spectrum: sigma_j is accurate to about
     * eps * sigma_max^2 / sigma_j, far below what the top-k diagnostics read.
     */
    public static Spectrum concatenated(double[][] matrices, int d, int k) {
        k = Math.min(k, d);
        DMatrixRMaj gram = new DMatrixRMaj(d, d);
        double frob = 0;
        for (double[] m : matrices) {
            DMatrixRMaj j = DMatrixRMaj.wrap(d, d, m); // read only
            CommonOps_DDRM.multAddTransB(j, j, gram);
            frob += sumOfSquares(m);
        }
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(d, true, true);
        if (!eig.decompose(gram)) {
            throw new ArithmeticException("eigendecomposition of the " + d + " x " + d + " Gram matrix did not converge");
        }
        int n = eig.getNumberOfEigenvalues();
        double[] lambda = new double[n];
        for (int j = 0; j < n; j++) {
            lambda[j] = eig.getEigenvalue(j).getReal();
        }
        Integer[] order = descending(lambda, n);
        double[] s = new double[k];
        double[][] uk = new double[k][];
        for (int j = 0; j < k; j++) {
            int c = order[j];
            s[j] = Math.sqrt(Math.max(0, lambda[c])); // tiny negative eigenvalues are rounding
            uk[j] = unit(eig.getEigenVector(c).getData().clone());
        }
        return new Spectrum(s, uk, null, frob, true);
    }

    /**
     * The sign rule of METHOD.md section 4: each pair (u_j, v_j) is flipped together so that
     * {@code <u_j, direction> > 0} (direction = sum_i J_i x_i of the model's final output). A pair orthogonal to it is
     * left as it is. Returns a new spectrum; the input is not changed.
     */
    public static Spectrum orient(Spectrum s, double[] direction) {
        int k = s.singularValues().length;
        double[][] u = new double[k][];
        double[][] v = s.v() == null ? null : new double[k][];
        for (int j = 0; j < k; j++) {
            boolean flip = dot(s.u()[j], direction) < 0;
            u[j] = flip ? negate(s.u()[j]) : s.u()[j].clone();
            if (v != null) {
                v[j] = flip ? negate(s.v()[j]) : s.v()[j].clone();
            }
        }
        return new Spectrum(s.singularValues().clone(), u, v, s.frobeniusSq(), s.exact());
    }

    static double sumOfSquares(double[] m) {
        double f = 0;
        for (double x : m) {
            f += x * x;
        }
        return f;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    private static double[] negate(double[] a) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = -a[i];
        }
        return out;
    }

    private static double[] unit(double[] a) {
        double n = Math.sqrt(dot(a, a));
        if (n > 0) {
            for (int i = 0; i < a.length; i++) {
                a[i] /= n;
            }
        }
        return a;
    }

    private static double[] column(DMatrixRMaj m, int c) {
        double[] out = new double[m.numRows];
        for (int r = 0; r < m.numRows; r++) {
            out[r] = m.get(r, c);
        }
        return out;
    }

    private static Integer[] descending(double[] values, int n) {
        Integer[] order = IntStream.range(0, n).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> values[i]).reversed());
        return order;
    }
}
