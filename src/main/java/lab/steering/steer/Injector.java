package lab.steering.steer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import lab.steering.hook.HookContext;
import lab.steering.hook.Hooks;
import lab.steering.hook.RowBatchHook;
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
    private NDArray embeddings;     // (1, t, d) of the current call, or a batch (rows, 1, d) with embeddingRow
    private int embeddingRow = -1;  // this injector's row in a batched step's embeddings; -1: one sequence
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

    /**
     * The hooks to pass to the forward pass (or to Generator): the input embeddings are kept, then the injection.
     * Both also run batched ({@link RowBatchHook}): in a batched decoding step every injector of the same form and
     * dtype gathers its operator slice and its row, and all of them are applied in one batched product.
     */
    @Override
    public Hooks hooks() {
        return Hooks.builder()
                .add(Site.embed(), new Capture())
                .add(Site.residPre(op.layer() - 1), new Inject())
                .build();
    }

    /** What the batched hooks group by: injectors of one form and dtype and shape share the batched products. */
    private Object key() {
        return java.util.List.of(op.isLowRank() ? "lowrank" : "full", operator.getDataType(), op.dim(),
                op.isLowRank() ? op.lowRank().rank() : 0);
    }

    /** Keeps the input embeddings of the call (one sequence) or the batch and this injector's row in it. */
    private final class Capture implements RowBatchHook {
        @Override
        public NDArray apply(Site site, NDArray x, HookContext ctx) {
            embeddings = x;
            embeddingRow = -1;
            return x;
        }

        @Override
        public Object batchKey() {
            return "capture";
        }

        @Override
        public NDArray applyRows(java.util.List<? extends RowBatchHook> hooks, NDArray x, int[] rows,
                                 int[] positions) {
            for (int i = 0; i < hooks.size(); i++) {
                Injector in = ((Capture) hooks.get(i)).injector();
                in.embeddings = x;
                in.embeddingRow = rows[i];
            }
            return x;
        }

        private Injector injector() {
            return Injector.this;
        }
    }

    /** The injection at the residual entering layer l_s - 1. */
    private final class Inject implements RowBatchHook {
        @Override
        public NDArray apply(Site site, NDArray h, HookContext ctx) {
            return inject(site, h, ctx);
        }

        @Override
        public Object batchKey() {
            return key();
        }

        @Override
        public NDArray applyRows(java.util.List<? extends RowBatchHook> hooks, NDArray x, int[] rows,
                                 int[] positions) {
            java.util.List<Injector> all = new java.util.ArrayList<>();
            for (RowBatchHook h : hooks) {
                all.add(((Inject) h).injector());
            }
            return injectRows(all, x, rows, positions);
        }

        private Injector injector() {
            return Injector.this;
        }
    }

    /**
     * The batched form of {@link #inject} for one decoding step of several injectors: each one's embedding row and
     * operator slice {@code operator[k mod T_c]} are gathered, {@code v = x J^T} for all of them in one batched
     * product (two for low-rank), each running sum and norm as in the one-sequence form, and the rows of {@code x}
     * that steer are replaced in one indexed write.
     */
    static NDArray injectRows(java.util.List<Injector> all, NDArray x, int[] rows, int[] positions) {
        int g = all.size();
        Injector first = all.get(0);
        DataType own = first.operator.getDataType();
        int d = first.op.dim();
        NDManager m = x.getManager();
        ai.djl.ndarray.NDList embs = new ai.djl.ndarray.NDList(g);
        ai.djl.ndarray.NDList ops = new ai.djl.ndarray.NDList(g);
        ai.djl.ndarray.NDList mixers = new ai.djl.ndarray.NDList(g);
        ai.djl.ndarray.NDList carries = new ai.djl.ndarray.NDList(g);
        double[] half = new double[g];
        boolean anyCarry = false;
        for (int i = 0; i < g; i++) {
            Injector in = all.get(i);
            NDArray e = in.embeddingRow < 0 ? in.embeddings : in.embeddings.get(in.embeddingRow);
            embs.add(e.reshape(1, d));
            int k = positions[i] % in.op.tokens();
            ops.add(in.operatorAt[k]);
            if (in.mixer != null) {
                mixers.add(in.mixerAt[k]);
            }
            anyCarry |= in.carry != null;
            half[i] = in.strength / 2;
        }
        NDArray xs = ai.djl.ndarray.NDArrays.stack(embs).toType(own, false);             // (g, 1, d)
        NDArray v = xs.matMul(ai.djl.ndarray.NDArrays.stack(ops));                       // (g, 1, d) or (g, 1, r)
        if (first.mixer != null) {
            v = v.matMul(ai.djl.ndarray.NDArrays.stack(mixers));                         // (g, 1, d)
        }
        NDArray a = v;
        if (anyCarry) {
            for (Injector in : all) {
                carries.add(in.carry == null ? m.zeros(new Shape(1, d), own) : in.carry);
            }
            a = v.add(ai.djl.ndarray.NDArrays.stack(carries));
        }
        long[] at = new long[g];
        for (int i = 0; i < g; i++) {
            at[i] = rows[i];
        }
        NDIndex pick = new NDIndex("{}", m.create(at));
        NDArray h = x.get(pick);                                                          // (g, 1, d)
        NDArray hNorm = h.toType(own, false).norm(new int[] {-1}, true);                  // (g, 1, 1)
        NDArray aNorm = a.norm(new int[] {-1}, true);                                     // (g, 1, 1)
        double[] hn = hNorm.toType(DataType.FLOAT64, false).toDoubleArray();
        double[] an = aNorm.toType(DataType.FLOAT64, false).toDoubleArray();
        boolean anyStrength = false;
        for (int i = 0; i < g; i++) {
            Injector in = all.get(i);
            NDArray last = a.get(i);                                                      // (1, d)
            NDScope.unregister(last);
            last.attach(in.owner);
            if (in.carry != null) {
                in.carry.close();
            }
            in.carry = last;
            in.lastInjectedNorm = an[i];
            in.lastResidualNorm = hn[i];
            anyStrength |= in.strength != 0;
        }
        if (!anyStrength) {
            return x;
        }
        NDArray scale = m.create(half).toType(own, false).reshape(g, 1, 1);
        NDArray delta = a.mul(hNorm).div(aNorm).mul(scale);
        NDArray steered = h.add(delta.toType(h.getDataType(), false));
        long[] which = java.util.stream.IntStream.range(0, g).filter(i -> all.get(i).strength != 0)
                .mapToLong(i -> rows[i]).toArray();
        NDArray out = x.duplicate();
        if (which.length == g) {
            ai.djl.pytorch.jni.JniUtils.indexAdvPut((ai.djl.pytorch.engine.PtNDArray) out, pick,
                    (ai.djl.pytorch.engine.PtNDArray) steered);
        } else { // strength-0 rows keep h exactly, as the one-sequence form returns h untouched
            long[] local = java.util.stream.IntStream.range(0, g).filter(i -> all.get(i).strength != 0)
                    .mapToLong(i -> i).toArray();
            ai.djl.pytorch.jni.JniUtils.indexAdvPut((ai.djl.pytorch.engine.PtNDArray) out,
                    new NDIndex("{}", m.create(which)),
                    (ai.djl.pytorch.engine.PtNDArray) steered.get(new NDIndex("{}", m.create(local))));
        }
        return out;
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
        NDArray x = (embeddingRow < 0 ? embeddings : embeddings.get(embeddingRow)).reshape(t, op.dim())
                .toType(own, false);
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
