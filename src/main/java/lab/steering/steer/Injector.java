package lab.steering.steer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import lab.steering.hook.HookContext;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;
import lab.steering.model.Transformer;

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
    private final NDArray operator; // full: J^T per concept position (T_c, d_in, d_out); low-rank: V (T_c, d, r)
    private final NDArray mixer;    // low-rank: diag(s) U^T (T_c, r, d); full: null
    private final NDArray[] operatorAt; // the views operator[k], k < T_c (one-token steps)
    private final NDArray[] mixerAt;    // the views mixer[k] (low-rank)
    private final NDArray halfStrength; // lambda / 2 as a 0-dim tensor in the operator's dtype
    private final NDManager owner;      // the generation's manager: owns every array kept between calls
    private NDArray carry;          // (1, d): a at the last position handled so far; outside any NDScope
    private NDArray embeddings;     // (1, t, d) of the current call
    private double lastInjectedNorm;
    private double lastResidualNorm;

    /** Puts the operator on the model's device in {@code dtype}, owned by {@code m} (the generation's manager). */
    public Injector(SteeringOperator op, double strength, NDManager m, DataType dtype) {
        this.op = op;
        this.strength = strength;
        this.owner = m;
        int t = op.tokens();
        int d = op.dim();
        NDArray mix = null;
        NDArray main;
        if (op.isLowRank()) {
            int r = op.lowRank().rank();
            main = m.create(flatten(op.lowRank().v()), new Shape(t, d, r)).toType(dtype, false);
            NDArray u = m.create(flatten(op.lowRank().u()), new Shape(t, d, r)).toType(dtype, false);
            NDArray sv = m.create(flatten(op.lowRank().s()), new Shape(t, r, 1)).toType(dtype, false);
            mix = u.transpose(0, 2, 1).mul(sv).duplicate(); // diag(s) U^T, contiguous
        } else {
            // stored transposed so that a row x (1, d) times operator[k] is J_k x as a row, one matmul per step
            main = m.create(flatten(op.full()), new Shape(t, d, d)).toType(dtype, false).transpose(0, 2, 1)
                    .duplicate();
        }
        this.operator = main;
        this.mixer = mix;
        this.operatorAt = new NDArray[t];
        this.mixerAt = mix == null ? null : new NDArray[t];
        for (int k = 0; k < t; k++) {
            operatorAt[k] = main.get(k);
            if (mix != null) {
                mixerAt[k] = mix.get(k);
            }
        }
        this.halfStrength = Transformer.scalar(m, strength / 2, dtype);
        NDScope.unregister(main);
        NDScope.unregister(operatorAt);
        if (mix != null) {
            NDScope.unregister(mix);
            NDScope.unregister(mixerAt);
        }
        NDScope.unregister(halfStrength);
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

    /** The injected vectors v_k for the positions of this call, (t, d); {@code x} is (t, d). */
    NDArray vectors(NDArray x, HookContext ctx) {
        int t = ctx.length();
        int d = op.dim();
        if (t == 1) { // a decoding step: views, no gather
            int k = ctx.start() % op.tokens();
            NDArray v = x.matMul(operatorAt[k]);                      // (1, d) or, low-rank, (1, r)
            return mixer == null ? v : v.matMul(mixerAt[k]);
        }
        long[] which = new long[t];
        for (int j = 0; j < t; j++) {
            which[j] = (ctx.start() + j) % op.tokens();
        }
        NDIndex index = new NDIndex("{}", x.getManager().create(which));
        NDArray xs = x.reshape(t, 1, d);
        NDArray v = xs.matMul(operator.get(index));                   // (t, 1, d) or (t, 1, r)
        if (mixer != null) {
            v = v.matMul(mixer.get(index));
        }
        return v.reshape(t, d);
    }

    /** The one element of {@code a} as a double, without a conversion op where the dtype allows. */
    private static double value(NDArray a) {
        return switch (a.getDataType()) {
            case FLOAT32 -> a.getFloat();
            case FLOAT64 -> a.getDouble();
            default -> a.toType(DataType.FLOAT64, false).getDouble();
        };
    }

    /**
     * Computes in the injector's dtype (that of its operator arrays); the residual {@code h} keeps its own, which is
     * bfloat16 or float16 when decoding on a GPU: the embeddings come in and the added vector goes out converted.
     */
    private NDArray inject(Site site, NDArray h, HookContext ctx) {
        if (ctx.start() == 0 && carry != null) {
            carry.close();
            carry = null;
        }
        DataType own = operator.getDataType();
        int t = ctx.length();
        NDArray x = embeddings.reshape(t, op.dim()).toType(own, false);
        NDArray a = t == 1 ? vectors(x, ctx) : vectors(x, ctx).cumSum(0); // running sum within this call
        if (carry != null) {
            a = a.add(carry);
        }
        NDArray last = t == 1 ? a : a.get(new NDIndex("-1:")); // kept past this call's scope
        NDScope.unregister(last);
        last.attach(owner); // closed with the generation, or when the next call replaces it
        if (carry != null) {
            carry.close();
        }
        carry = last;
        NDArray hNorm = h.toType(own, false).norm(new int[] {-1}, true); // (1, t, 1)
        NDArray aNorm = a.norm(new int[] {-1}, true);                   // (t, 1)
        lastInjectedNorm = value(t == 1 ? aNorm : aNorm.get(t - 1));
        lastResidualNorm = value(t == 1 ? hNorm : hNorm.get(new NDIndex("0, -1, 0")));
        if (strength == 0) {
            return h;
        }
        NDArray delta = a.mul(hNorm).div(aNorm).mul(halfStrength);
        return h.add(delta.toType(h.getDataType(), false));
    }
}
