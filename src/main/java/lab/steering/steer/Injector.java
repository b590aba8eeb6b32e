package lab.steering.steer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import lab.steering.hook.HookContext;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;

/**
 * The paper's injection as hooks (METHOD.md section 5). For every position k, prompt and generated alike:
 * {@code v_k = J_C[k mod T_c] x_k} (x_k the input embedding of token k), {@code a_k = sum_{j<=k} v_j}, and
 * {@code h_k <- h_k + lambda * a_k * ||h_k|| / (2 ||a_k||)} on the residual entering layer l_s - 1.
 * It works with the KV cache: each call handles only its new positions, carrying the running sum a between calls
 * (reset when a call starts at position 0, as re-encoding does). One Injector per generation.
 */
public final class Injector implements Steerer {

    private final SteeringOperator op;
    private final double strength;
    private final NDArray operator; // full: (T_c, d, d); low-rank: U (T_c, d, r)
    private final NDArray sValues;  // low-rank: (T_c, r)
    private final NDArray vFactor;  // low-rank: (T_c, d, r)
    private double[] carry;         // a at the last position handled so far
    private NDArray embeddings;     // (1, t, d) of the current call
    private double lastInjectedNorm;
    private double lastResidualNorm;

    /** Puts the operator on the model's device in {@code dtype}, owned by {@code m} (the generation's manager). */
    public Injector(SteeringOperator op, double strength, NDManager m, DataType dtype) {
        this.op = op;
        this.strength = strength;
        int t = op.tokens();
        int d = op.dim();
        if (op.isLowRank()) {
            int r = op.lowRank().rank();
            operator = m.create(flatten(op.lowRank().u()), new Shape(t, d, r)).toType(dtype, false);
            sValues = m.create(flatten(op.lowRank().s()), new Shape(t, r)).toType(dtype, false);
            vFactor = m.create(flatten(op.lowRank().v()), new Shape(t, d, r)).toType(dtype, false);
        } else {
            operator = m.create(flatten(op.full()), new Shape(t, d, d)).toType(dtype, false);
            sValues = null;
            vFactor = null;
        }
    }

    static float[] flatten(float[][] rows) {
        int n = 0;
        for (float[] r : rows) {
            n += r.length;
        }
        float[] out = new float[n];
        int at = 0;
        for (float[] r : rows) {
            System.arraycopy(r, 0, out, at, r.length);
            at += r.length;
        }
        return out;
    }

    /** The hooks to pass to the forward pass (or to Generator). */
    @Override
    public Hooks hooks() {
        return Hooks.builder()
                .add(Site.embed(), (site, x, ctx) -> {
                    embeddings = x;
                    return x;
                })
                .add(Site.residPre(op.layer() - 1), this::inject)
                .build();
    }

    /** ||a_k|| at the last injected position (a diagnostic). */
    public double lastInjectedNorm() {
        return lastInjectedNorm;
    }

    @Override
    public double strength() {
        return strength;
    }

    @Override
    public double lastDirectionNorm() {
        return lastInjectedNorm;
    }

    @Override
    public double lastResidualNorm() {
        return lastResidualNorm;
    }

    /** The injected vectors v_k for the positions of this call, (t, d). */
    NDArray vectors(NDArray x, HookContext ctx) {
        NDManager m = x.getManager();
        int t = ctx.length();
        long[] which = new long[t];
        for (int j = 0; j < t; j++) {
            which[j] = (ctx.start() + j) % op.tokens();
        }
        NDArray index = m.create(which);
        NDArray xs = x.reshape(t, op.dim(), 1);
        if (!op.isLowRank()) {
            return operator.get(new NDIndex("{}", index)).matMul(xs).reshape(t, op.dim());
        }
        NDArray u = operator.get(new NDIndex("{}", index));          // (t, d, r)
        NDArray s = sValues.get(new NDIndex("{}", index));           // (t, r)
        NDArray v = vFactor.get(new NDIndex("{}", index));           // (t, d, r)
        NDArray coeff = v.transpose(0, 2, 1).matMul(xs).reshape(t, -1).mul(s); // (t, r)
        return u.matMul(coeff.reshape(t, -1, 1)).reshape(t, op.dim());
    }

    /**
     * Computes in the injector's dtype (that of its operator arrays); the residual {@code h} keeps its own, which is
     * bfloat16 or float16 when decoding on a GPU: the embeddings come in and the added vector goes out converted.
     */
    private NDArray inject(Site site, NDArray h, HookContext ctx) {
        if (ctx.start() == 0) {
            carry = null;
        }
        DataType own = operator.getDataType();
        NDArray x = embeddings.get(0).toType(own, false);            // (t, d)
        NDArray a = vectors(x, ctx).cumSum(0);                       // running sum within this call
        if (carry != null) {
            a = a.add(h.getManager().create(carry).toType(own, false));
        }
        NDArray last = a.get(new NDIndex("-1"));
        carry = last.toType(DataType.FLOAT64, false).toDoubleArray();
        lastInjectedNorm = last.norm().toType(DataType.FLOAT64, false).getDouble();
        NDArray hNorm = h.toType(own, false).norm(new int[] {-1}, true); // (1, t, 1)
        lastResidualNorm = hNorm.get(new NDIndex("0, -1, 0")).toType(DataType.FLOAT64, false).getDouble();
        if (strength == 0) {
            return h;
        }
        NDArray aNorm = a.norm(new int[] {-1}, true);               // (t, 1)
        NDArray delta = a.mul(hNorm).div(aNorm.mul(2)).mul(strength);
        return h.add(delta.toType(h.getDataType(), false));
    }
}
