package lab.steering.steer;

import ai.djl.ndarray.types.DataType;
import java.util.function.IntConsumer;
import lab.steering.jacobian.JacobianEngine;
import lab.steering.jacobian.JacobianStack;
import lab.steering.jacobian.Target;
import lab.steering.model.LanguageModel;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.SingularOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

/** Builds steering operators from a concept prompt: the cumulative detached Jacobian at the split layer. */
public final class OperatorBuilder {

    private OperatorBuilder() {
    }

    /** The paper's default split layer: 2L/3 (integer division). */
    public static int defaultLayer(int layers) {
        return Math.max(1, 2 * layers / 3);
    }

    /** The dense operator J_C [T_c, d, d] of {@code conceptIds} at {@code layer}, computed in {@code dtype}. */
    public static SteeringOperator full(LanguageModel model, long[] conceptIds, int layer, DataType dtype,
                                        IntConsumer progress) {
        if (layer < 1 || layer > model.config().numLayers()) {
            throw new IllegalArgumentException("layer must be in 1.." + model.config().numLayers() + ", got " + layer);
        }
        JacobianStack j = JacobianEngine.full(model, conceptIds, dtype,
                new Target(layer, Target.Mode.CUMULATIVE, Target.Component.LAYER), 256L << 20, progress);
        float[][] full = new float[j.tokens()][];
        for (int i = 0; i < j.tokens(); i++) {
            double[] src = j.jacobian()[i];
            float[] dst = new float[src.length];
            for (int k = 0; k < src.length; k++) {
                dst[k] = (float) src[k];
            }
            full[i] = dst;
        }
        return new SteeringOperator(model.id(), conceptIds, layer, j.dim(), full, null);
    }

    /**
     * Per-token truncated SVD of a dense operator: rank {@code rank} when > 0, else the smallest rank keeping
     * {@code energy} of every token's squared Frobenius norm (the largest such rank over tokens).
     */
    public static SteeringOperator lowRank(SteeringOperator dense, int rank, double energy) {
        int d = dense.dim();
        int t = dense.tokens();
        DMatrixRMaj[] u = new DMatrixRMaj[t];
        DMatrixRMaj[] w = new DMatrixRMaj[t];
        DMatrixRMaj[] v = new DMatrixRMaj[t];
        int keep = rank;
        int needed = 1;
        for (int i = 0; i < t; i++) {
            DMatrixRMaj a = new DMatrixRMaj(d, d);
            for (int k = 0; k < d * d; k++) {
                a.data[k] = dense.full()[i][k];
            }
            SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(d, d, true, true, false);
            if (!svd.decompose(a)) {
                throw new IllegalStateException("SVD failed for concept token " + i);
            }
            u[i] = svd.getU(null, false);
            w[i] = svd.getW(null);
            v[i] = svd.getV(null, false);
            SingularOps_DDRM.descendingOrder(u[i], false, w[i], v[i], false);
            double total = 0;
            for (int k = 0; k < d; k++) {
                total += w[i].get(k, k) * w[i].get(k, k);
            }
            double acc = 0;
            int r = 0;
            while (r < d && acc < energy * total) {
                acc += w[i].get(r, r) * w[i].get(r, r);
                r++;
            }
            needed = Math.max(needed, r);
        }
        if (keep <= 0) {
            keep = needed;
        }
        keep = Math.min(keep, d);
        float[][] uu = new float[t][d * keep];
        float[][] ss = new float[t][keep];
        float[][] vv = new float[t][d * keep];
        for (int i = 0; i < t; i++) {
            for (int c = 0; c < keep; c++) {
                ss[i][c] = (float) w[i].get(c, c);
                for (int r = 0; r < d; r++) {
                    uu[i][r * keep + c] = (float) u[i].get(r, c);
                    vv[i][r * keep + c] = (float) v[i].get(r, c);
                }
            }
        }
        return new SteeringOperator(dense.modelId(), dense.conceptIds(), dense.layer(), d, null,
                new SteeringOperator.LowRankFactors(keep, uu, ss, vv));
    }

    /**
     * The same concept and form at another split layer, rebuilt from the concept ids on {@code model} (a low-rank
     * operator keeps its rank). Returns {@code op} itself at its own layer.
     */
    public static SteeringOperator atLayer(LanguageModel model, SteeringOperator op, int layer) {
        if (layer == op.layer()) {
            return op;
        }
        SteeringOperator dense = full(model, op.conceptIds(), layer, model.dataType(), r -> { });
        return op.isLowRank() ? lowRank(dense, op.lowRank().rank(), 1.0) : dense;
    }

    /** The smallest fraction, over concept tokens, of ||J_i||_F^2 that the low-rank factors keep (sum of s^2). */
    public static double energyKept(SteeringOperator dense, SteeringOperator lowRank) {
        double worst = 1;
        for (int i = 0; i < dense.tokens(); i++) {
            double total = 0;
            for (float x : dense.full()[i]) {
                total += (double) x * x;
            }
            double kept = 0;
            for (float s : lowRank.lowRank().s()[i]) {
                kept += (double) s * s;
            }
            if (total > 0) {
                worst = Math.min(worst, Math.min(1, kept / total));
            }
        }
        return worst;
    }
}
