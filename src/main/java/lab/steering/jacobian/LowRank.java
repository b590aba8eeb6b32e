package lab.steering.jacobian;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.IntConsumer;
import lab.steering.model.LanguageModel;
import lab.steering.model.Threads;
import lab.steering.model.Transformer;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.SingularOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.QRDecomposition;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

/**
 * Top-k singular triplets of every J_i, and of the token-concatenated [J_0 ... J_{T-1}], without materialising J
 * (METHOD.md section 3): randomized block subspace iteration on the products {@code J_i v} (the frozen network's
 * forward with v at position i) and {@code J_i^T u} (the transposed pass), all tokens batched, with a Rayleigh-Ritz
 * step until the top-k values stop moving. Memory is bounded by processing tokens in groups.
 */
public final class LowRank {

    private LowRank() {
    }

    /**
     * @param perToken       top-k of each J_i (Frobenius norms estimated from the random start, {@code exact=false})
     * @param combined       top-k of the concatenated matrix (left vectors only)
     * @param reconstruction sum_i J_i x_i + c, by forward passes of the frozen network (exact, no J needed)
     * @param output         y as the model computed it
     * @param iterations     subspace iterations used (per-token, combined)
     * @param constant       c, the frozen network at x = 0 (zero for families without biases)
     */
    public record Result(List<Spectrum> perToken, Spectrum combined, double[] reconstruction, double[] output,
                         int[] iterations, double[] constant) {
    }

    /** Settings: k wanted, extra columns, tolerance on the relative change of the top-k values, iteration cap. */
    public record Settings(int k, int oversample, double tolerance, int maxIterations, long seed, long groupBytes) {
        public static Settings of(int k) {
            return new Settings(k, 10, 1e-10, 60, 1234, 256L << 20);
        }
    }

    public static Result topK(LanguageModel model, long[] ids, DataType dtype, Target target, Settings s,
                              IntConsumer progress) {
        Threads.full(); // the engine's threads, whatever a decoding step left here
        Transformer tf = model.transformer(dtype);
        int d = tf.config().hiddenSize();
        int t = ids.length;
        int p = Math.min(d, s.k() + s.oversample());
        int k = Math.min(s.k(), d);
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            FrozenNetwork f = FrozenNetwork.record(tf, m, ids);
            Ops ops = new Ops(f, target, m, dtype, t, d, groupSize(t, p, d, dtype, s.groupBytes()));
            double[] output = f.targetOutput(target).toType(DataType.FLOAT64, false).toDoubleArray();
            double[] constant = f.constant(target);
            double[] recon = ops.applyAll(f.targetInput(target)); // the linear part, J applied to the inputs
            for (int r = 0; r < d; r++) {
                recon[r] += constant[r];
            }

            // per token: block subspace iteration
            Random rng = new Random(s.seed());
            DMatrixRMaj[] q = new DMatrixRMaj[t]; // d x p, orthonormal columns spanning ~ range(J_i)
            double[] frob = new double[t];
            DMatrixRMaj[] omega = new DMatrixRMaj[t];
            for (int i = 0; i < t; i++) {
                omega[i] = gaussian(d, p, rng);
            }
            DMatrixRMaj[] y = ops.forward(omega);          // J_i Omega_i
            for (int i = 0; i < t; i++) {
                frob[i] = CommonOps_DDRM.elementSumAbs(square(y[i])) / p; // E||J z||^2 = ||J||_F^2
                q[i] = orth(y[i]);
            }
            double[][] prev = null;
            List<Spectrum> spectra = null;
            int iter = 0;
            while (true) {
                iter++;
                DMatrixRMaj[] z = ops.backward(q);         // J_i^T Q_i  (d x p)
                spectra = new ArrayList<>();
                double[][] values = new double[t][];
                for (int i = 0; i < t; i++) {
                    // B_i = Q_i^T J_i = z_i^T (p x d): its SVD gives the Ritz triplets
                    Spectrum sp = ritz(q[i], z[i], k, frob[i]);
                    spectra.add(sp);
                    values[i] = sp.singularValues();
                }
                progress.accept(iter);
                if (prev != null && converged(prev, values, s.tolerance()) || iter >= s.maxIterations()) {
                    break;
                }
                prev = values;
                DMatrixRMaj[] zq = new DMatrixRMaj[t];
                for (int i = 0; i < t; i++) {
                    zq[i] = orth(z[i]);
                }
                DMatrixRMaj[] yy = ops.forward(zq);        // J_i (orth of J_i^T Q_i)
                for (int i = 0; i < t; i++) {
                    q[i] = orth(yy[i]);
                }
            }
            int perTokenIter = iter;

            // concatenated matrix: subspace iteration on M M^T = sum_i J_i J_i^T (output space)
            DMatrixRMaj qc = orth(gaussian(d, p, rng));
            double frobM = 0;
            double[] prevC = null;
            Spectrum combined;
            int iterC = 0;
            while (true) {
                iterC++;
                DMatrixRMaj qt = new DMatrixRMaj(p, d);
                CommonOps_DDRM.transpose(qc, qt);
                NDArray seed = ops.toNd(qt);                       // (p, d): one cotangent per column of Q
                NDArray back = f.transpose(target, seed);          // (p, T, d) = [J_i^T q]_i
                if (iterC == 1) {
                    frobM = back.square().sum().toType(DataType.FLOAT64, false).getDouble() * d / p;
                }
                DMatrixRMaj mmq = ops.fromNd(f.apply(target, back), p, d); // (p, d) rows = (M M^T q)^T
                DMatrixRMaj aq = new DMatrixRMaj(d, p);
                CommonOps_DDRM.transpose(mmq, aq);
                // Rayleigh-Ritz on the symmetric operator: H = Q^T A Q (p x p)
                DMatrixRMaj h = new DMatrixRMaj(p, p);
                CommonOps_DDRM.multTransA(qc, aq, h);
                SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(p, p, true, false, false);
                svd.decompose(h);
                DMatrixRMaj uh = svd.getU(null, false);
                DMatrixRMaj w = svd.getW(null);
                SingularOps_DDRM.descendingOrder(uh, false, w, null, false);
                double[] sv = new double[k];
                double[][] uv = new double[k][];
                DMatrixRMaj basis = new DMatrixRMaj(d, p);
                CommonOps_DDRM.mult(qc, uh, basis);
                for (int j = 0; j < k; j++) {
                    sv[j] = Math.sqrt(Math.max(0, w.get(j, j)));
                    uv[j] = column(basis, j);
                }
                combined = new Spectrum(sv, uv, null, frobM, false);
                progress.accept(perTokenIter + iterC);
                if (prevC != null && converged(new double[][] {prevC}, new double[][] {sv}, s.tolerance())
                        || iterC >= s.maxIterations()) {
                    break;
                }
                prevC = sv;
                qc = orth(aq);
            }
            return new Result(spectra, combined, recon, output, new int[] {perTokenIter, iterC}, constant);
        }
    }

    static int groupSize(int t, int p, int d, DataType dtype, long bytes) {
        long perToken = (long) p * t * d * dtype.getNumOfBytes() * 6;
        return (int) Math.max(1, Math.min(t, bytes / Math.max(1, perToken)));
    }

    static boolean converged(double[][] prev, double[][] now, double tol) {
        for (int i = 0; i < now.length; i++) {
            for (int j = 0; j < now[i].length; j++) {
                double scale = Math.max(now[i][0], 1e-300);
                if (Math.abs(now[i][j] - prev[i][j]) > tol * scale) {
                    return false;
                }
            }
        }
        return true;
    }

    private static Spectrum ritz(DMatrixRMaj q, DMatrixRMaj z, int k, double frob) {
        int d = q.numRows;
        int p = q.numCols;
        DMatrixRMaj b = new DMatrixRMaj(p, d);
        CommonOps_DDRM.transpose(z, b);
        SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(p, d, true, true, true);
        svd.decompose(b);
        DMatrixRMaj ub = svd.getU(null, false); // p x p
        DMatrixRMaj w = svd.getW(null);
        DMatrixRMaj vt = svd.getV(null, true);  // p x d
        SingularOps_DDRM.descendingOrder(ub, false, w, vt, true);
        DMatrixRMaj u = new DMatrixRMaj(d, ub.numCols);
        CommonOps_DDRM.mult(q, ub, u);
        double[] sv = new double[k];
        double[][] uu = new double[k][];
        double[][] vv = new double[k][];
        for (int j = 0; j < k; j++) {
            sv[j] = w.get(j, j);
            uu[j] = column(u, j);
            vv[j] = Arrays.copyOfRange(vt.data, j * d, (j + 1) * d);
        }
        return new Spectrum(sv, uu, vv, Math.max(frob, sv[0] * sv[0]), false);
    }

    static double[] column(DMatrixRMaj a, int j) {
        double[] out = new double[a.numRows];
        for (int r = 0; r < a.numRows; r++) {
            out[r] = a.get(r, j);
        }
        return out;
    }

    private static DMatrixRMaj square(DMatrixRMaj a) {
        DMatrixRMaj out = a.copy();
        CommonOps_DDRM.elementMult(out, a);
        return out;
    }

    private static DMatrixRMaj gaussian(int rows, int cols, Random rng) {
        DMatrixRMaj a = new DMatrixRMaj(rows, cols);
        for (int i = 0; i < a.data.length; i++) {
            a.data[i] = rng.nextGaussian();
        }
        return a;
    }

    /**
     * Orthonormal basis of the columns (thin QR). A rank-deficient matrix (e.g. J_i = 0 for a token outside a
     * sliding window's reach, where Householder QR stops at a zero column) gets a Gram-Schmidt basis whose
     * degenerate columns are completed with unit vectors.
     */
    static DMatrixRMaj orth(DMatrixRMaj a) {
        QRDecomposition<DMatrixRMaj> qr = DecompositionFactory_DDRM.qr(a.numRows, a.numCols);
        if (qr.decompose(a.copy())) {
            DMatrixRMaj q = qr.getQ(null, true);
            if (!org.ejml.dense.row.MatrixFeatures_DDRM.hasUncountable(q)) {
                return q;
            }
        }
        return completedGramSchmidt(a);
    }

    static DMatrixRMaj completedGramSchmidt(DMatrixRMaj a) {
        int n = a.numRows;
        int p = a.numCols;
        double scale = Math.max(CommonOps_DDRM.elementMaxAbs(a), Double.MIN_NORMAL);
        DMatrixRMaj q = new DMatrixRMaj(n, p);
        int unit = 0;
        for (int j = 0; j < p; j++) {
            double[] v = column(a, j);
            double floor = 1e-10 * scale;
            while (true) {
                for (int pass = 0; pass < 2; pass++) {
                    for (int c = 0; c < j; c++) {
                        double dot = 0;
                        for (int r = 0; r < n; r++) {
                            dot += q.get(r, c) * v[r];
                        }
                        for (int r = 0; r < n; r++) {
                            v[r] -= dot * q.get(r, c);
                        }
                    }
                }
                double norm = 0;
                for (double x : v) {
                    norm += x * x;
                }
                norm = Math.sqrt(norm);
                if (norm > floor) {
                    for (int r = 0; r < n; r++) {
                        q.set(r, j, v[r] / norm);
                    }
                    break;
                }
                if (unit >= n) {
                    throw new IllegalStateException("no orthonormal completion: more columns than rows");
                }
                v = new double[n];
                v[unit++] = 1;
                floor = 1e-8;
            }
        }
        return q;
    }

    /** The batched products, tokens processed in groups to bound memory. */
    private static final class Ops {
        final FrozenNetwork f;
        final Target target;
        final NDManager m;
        final DataType dtype;
        final int t;
        final int d;
        final int group;

        Ops(FrozenNetwork f, Target target, NDManager m, DataType dtype, int t, int d, int group) {
            this.f = f;
            this.target = target;
            this.m = m;
            this.dtype = dtype;
            this.t = t;
            this.d = d;
            this.group = group;
        }

        NDArray toNd(DMatrixRMaj rowsByD) { // (p, d) matrix given as p x d
            return m.create(rowsByD.data, new Shape(rowsByD.numRows, rowsByD.numCols)).toType(dtype, false);
        }

        DMatrixRMaj fromNd(NDArray a, int rows, int cols) {
            return new DMatrixRMaj(rows, cols, true, a.toType(DataType.FLOAT64, false).toDoubleArray());
        }

        double[] applyAll(NDArray x) {
            return f.apply(target, x).toType(DataType.FLOAT64, false).toDoubleArray();
        }

        /** J_i V_i for every token i, V_i (d x p): one frozen forward per group with V_i at position i. */
        DMatrixRMaj[] forward(DMatrixRMaj[] v) {
            int p = v[0].numCols;
            DMatrixRMaj[] out = new DMatrixRMaj[t];
            for (int g0 = 0; g0 < t; g0 += group) {
                int g1 = Math.min(t, g0 + group);
                try (NDScope scope = new NDScope()) {
                    scope.suppressNotUsedWarning();
                    double[] x = new double[(g1 - g0) * p * t * d]; // (B = tokens x p, T, d), one-hot in position
                    for (int i = g0; i < g1; i++) {
                        for (int c = 0; c < p; c++) {
                            int base = (((i - g0) * p + c) * t + i) * d;
                            for (int r = 0; r < d; r++) {
                                x[base + r] = v[i].get(r, c);
                            }
                        }
                    }
                    NDArray in = m.create(x, new Shape((long) (g1 - g0) * p, t, d)).toType(dtype, false);
                    double[] y = f.apply(target, in).toType(DataType.FLOAT64, false).toDoubleArray(); // (B, d)
                    for (int i = g0; i < g1; i++) {
                        DMatrixRMaj yi = new DMatrixRMaj(d, p);
                        for (int c = 0; c < p; c++) {
                            int base = ((i - g0) * p + c) * d;
                            for (int r = 0; r < d; r++) {
                                yi.set(r, c, y[base + r]);
                            }
                        }
                        out[i] = yi;
                    }
                }
            }
            return out;
        }

        /** J_i^T U_i for every token i, U_i (d x p): one transposed pass per group, position i kept. */
        DMatrixRMaj[] backward(DMatrixRMaj[] u) {
            int p = u[0].numCols;
            DMatrixRMaj[] out = new DMatrixRMaj[t];
            for (int g0 = 0; g0 < t; g0 += group) {
                int g1 = Math.min(t, g0 + group);
                try (NDScope scope = new NDScope()) {
                    scope.suppressNotUsedWarning();
                    double[] seed = new double[(g1 - g0) * p * d];
                    for (int i = g0; i < g1; i++) {
                        for (int c = 0; c < p; c++) {
                            for (int r = 0; r < d; r++) {
                                seed[((i - g0) * p + c) * d + r] = u[i].get(r, c);
                            }
                        }
                    }
                    NDArray s = m.create(seed, new Shape((long) (g1 - g0) * p, d)).toType(dtype, false);
                    NDArray back = f.transpose(target, s); // (B, T, d)
                    List<NDArray> picks = new ArrayList<>();
                    for (int i = g0; i < g1; i++) {
                        picks.add(back.get(new NDIndex("{}:{}, {}, :", (i - g0) * p, (i - g0 + 1) * p, i)));
                    }
                    double[] z = NDArrays.concat(new NDList(picks)).toType(DataType.FLOAT64, false).toDoubleArray();
                    for (int i = g0; i < g1; i++) {
                        DMatrixRMaj zi = new DMatrixRMaj(d, p);
                        for (int c = 0; c < p; c++) {
                            int base = ((i - g0) * p + c) * d;
                            for (int r = 0; r < d; r++) {
                                zi.set(r, c, z[base + r]);
                            }
                        }
                        out[i] = zi;
                    }
                }
            }
            return out;
        }
    }
}
