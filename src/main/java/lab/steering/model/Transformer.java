package lab.steering.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import java.util.HashMap;
import java.util.Map;
import lab.steering.hook.HookContext;
import lab.steering.hook.Hooks;
import lab.steering.hook.Point;
import lab.steering.hook.Site;

/**
 * The decoder forward pass of every supported family: the variations (norm kind and placement, biases, QK-norm,
 * MLP form, activation, positions, embedding scale, sliding windows) come from the config's {@link Family} and
 * fields, not from copies of this code. It knows nothing about steering or Jacobians: everything outside reads or
 * changes activations through {@link Hooks} at typed {@link Site}s. Its building blocks ({@link #linear},
 * {@link #normScale}, {@link #applyNorm}, {@link #mlpLinear}, ...) are public so that code which re-evaluates parts of
 * the network (with some factors held fixed) runs the very same ops. Temporaries are created in the manager of the
 * input ids; callers wrap calls in an NDScope (or close that manager) to free them.
 */
public final class Transformer {

    private final ModelConfig c;
    private final Family f;
    private final Weights w;
    private final DataType dtype;
    private final Rope globalRope;
    private final Rope localRope;
    private final NDArray rotateHalf; // (headDim, headDim)
    private final Constants num;

    public Transformer(ModelConfig c, Weights w, NDManager owner) {
        this.c = c;
        this.f = c.family();
        this.w = w;
        this.dtype = w.dataType();
        this.globalRope = new Rope(c);
        this.localRope = new Rope(c.headDim(), c.localRopeTheta(), null);
        this.rotateHalf = globalRope.rotateHalfMatrix(owner, dtype);
        this.num = new Constants(owner, c, dtype);
    }

    public ModelConfig config() {
        return c;
    }

    public Weights weights() {
        return w;
    }

    public DataType dataType() {
        return dtype;
    }

    /**
     * Runs tokens through every layer and the final norm.
     *
     * @param ids   (batch, t) int64 token ids, in the manager that should own the temporaries
     * @param cache keys and values of earlier tokens (appended to), or null for a stand-alone pass from position 0
     * @return (batch, t, d) final-normed hidden states (the input of lm_head)
     */
    public NDArray forward(NDArray ids, KvCache cache, Hooks hooks) {
        int t = (int) ids.getShape().get(1);
        return run(ids, new Uniform(cache == null ? 0 : cache.length(), t, cache), hooks);
    }

    /**
     * One decoding step of several rows, each at its own position (batched decoding): row r feeds one token at
     * position {@code cache.length(r)} and attends to its own slot's keys only. A row's numbers are those of its
     * unbatched step ({@link #forward} with its own cache) up to the order of float sums. Hooks see the whole batch
     * (rows, 1, d) with a context of {@code (0, 1)}; per-row steering dispatches on the row itself (the scheduler's
     * hooks do).
     *
     * @param ids   (rows, 1) int64 token ids; row r uses slot r of {@code cache}
     * @return (rows, 1, d) final-normed hidden states
     */
    public NDArray forwardRows(NDArray ids, RowCache cache, Hooks hooks) {
        int rows = (int) ids.getShape().get(0);
        if (ids.getShape().get(1) != 1) {
            throw new IllegalArgumentException("a batched step feeds one token per row");
        }
        return run(ids, new Rows(cache, rows), hooks);
    }

    /** The layer loop of both kinds of call; {@code at} says where the tokens sit. */
    private NDArray run(NDArray ids, Layout at, Hooks hooks) {
        NDManager m = ids.getManager();
        HookContext ctx = at.context();

        // embedding lookup: (batch, t, d), then any scaling and learned positions: HF hidden_states[0]
        NDArray x = w.embedding(ids);
        if (f.embedScale()) {
            x = x.mul(num.embedScale);
        }
        if (f.positions() == Family.Positions.LEARNED) {
            x = x.add(at.learnedPositions(m));
        }
        x = hooks.run(Site.embed(), x, ctx);

        Map<Integer, NDArray[]> ropeTables = new HashMap<>(); // by window: local and global layers differ
        Map<Integer, NDArray> masks = new HashMap<>();        // by window

        for (int l = 0; l < c.numLayers(); l++) {
            x = layer(l, x, m, ropeTables, masks, at, hooks, ctx);
        }
        at.advance();
        x = norm(x, w.finalNorm(), new Site(-1, Point.FINAL_SCALE), hooks, ctx);
        return hooks.run(Site.finalNorm(), x, ctx);
    }

    /**
     * Decoder layer {@code l} on the residual {@code x}, position tables and masks made in {@code m}; compact weights
     * are widened for this layer alone, into a manager closed when it returns (every array the layer returns or
     * hands to a hook is computed with an activation as the first operand, so none belongs to it).
     */
    private NDArray layer(int l, NDArray x, NDManager m, Map<Integer, NDArray[]> ropeTables,
                          Map<Integer, NDArray> masks, Layout at, Hooks hooks, HookContext ctx) {
        try (NDManager weights = m.newSubManager()) {
            Weights.Layer lw = w.layer(l, weights, Weights.Block.BOTH);
            int window = c.window(l);
            NDArray[] cosSin = f.positions() == Family.Positions.ROPE
                    ? ropeTables.computeIfAbsent(window > 0 ? 1 : 0,
                        k -> at.rope(k == 1 ? localRope : globalRope, m))
                    : null;
            NDArray mask = masks.computeIfAbsent(window, k -> at.mask(m, k));
            x = hooks.run(Site.residPre(l), x, ctx);
            NDArray h = lw.attnNorm() == null ? x : norm(x, lw.attnNorm(), new Site(l, Point.LN1_SCALE), hooks, ctx);
            NDArray attn = attention(l, lw, h, cosSin, mask, at, hooks, ctx);
            if (lw.attnPostNorm() != null) {
                attn = norm(attn, lw.attnPostNorm(), new Site(l, Point.LN1_POST_SCALE), hooks, ctx);
            }
            attn = hooks.run(Site.attnOut(l), attn, ctx);
            x = x.add(attn);
            x = hooks.run(new Site(l, Point.RESID_MID), x, ctx);
            h = lw.mlpNorm() == null ? x : norm(x, lw.mlpNorm(), new Site(l, Point.LN2_SCALE), hooks, ctx);
            NDArray mlp = mlp(l, lw, h, hooks, ctx);
            if (lw.mlpPostNorm() != null) {
                mlp = norm(mlp, lw.mlpPostNorm(), new Site(l, Point.LN2_POST_SCALE), hooks, ctx);
            }
            mlp = hooks.run(Site.mlpOut(l), mlp, ctx);
            x = x.add(mlp);
            return hooks.run(Site.residPost(l), x, ctx);
        }
    }

    /**
     * Where the tokens of a forward call sit: their positions (learned or rotary), which keys each may see, and
     * where their keys and values go.
     */
    private interface Layout {
        HookContext context();

        /** Learned position embeddings to add to the token embeddings, broadcasting over (batch, t, d). */
        NDArray learnedPositions(NDManager m);

        /** {@code [cos, sin]}, broadcasting over (batch, heads, t, headDim). */
        NDArray[] rope(Rope rope, NDManager m);

        /** Added to the scores viewed as (batch, kvHeads, group, t, s), or null when nothing is masked. */
        NDArray mask(NDManager m, int window);

        /** Caches this call's keys and values (batch, kvHeads, t, hd) and returns every key and value in view. */
        NDArray[] append(int layer, NDArray k, NDArray v);

        void advance();
    }

    /** Every row at the same positions {@code start .. start + t - 1} (a prompt, a one-sequence step, a batch). */
    private final class Uniform implements Layout {
        private final int start;
        private final int t;
        private final KvCache cache;

        Uniform(int start, int t, KvCache cache) {
            this.start = start;
            this.t = t;
            this.cache = cache;
        }

        @Override
        public HookContext context() {
            return new HookContext(start, t);
        }

        @Override
        public NDArray learnedPositions(NDManager m) {
            if (start + t > c.maxPositions()) {
                throw new IllegalArgumentException("position " + (start + t - 1) + " is past the model's "
                        + c.maxPositions() + " learned positions");
            }
            return w.positions().get(new NDIndex("{}:{}", start, start + t));
        }

        @Override
        public NDArray[] rope(Rope rope, NDManager m) {
            return rope.tables(m, start, t, dtype);
        }

        @Override
        public NDArray mask(NDManager m, int window) {
            return Transformer.this.mask(m, start, t, window);
        }

        @Override
        public NDArray[] append(int layer, NDArray k, NDArray v) {
            return cache == null ? new NDArray[] {k, v} : cache.append(layer, k, v);
        }

        @Override
        public void advance() {
            if (cache != null) {
                cache.advance(t);
            }
        }
    }

    /** One token per row, row r at position {@code cache.length(r)} (batched decoding). */
    private final class Rows implements Layout {
        private final RowCache cache;
        private final int rows;
        private final long[] positions;
        private NDIndex write;

        Rows(RowCache cache, int rows) {
            this.cache = cache;
            this.rows = rows;
            this.positions = new long[rows];
            for (int r = 0; r < rows; r++) {
                positions[r] = cache.length(r);
            }
        }

        @Override
        public HookContext context() {
            return new HookContext(0, 1);
        }

        @Override
        public NDArray learnedPositions(NDManager m) {
            for (long p : positions) {
                if (p >= c.maxPositions()) {
                    throw new IllegalArgumentException("position " + p + " is past the model's "
                            + c.maxPositions() + " learned positions");
                }
            }
            return w.positions().get(new NDIndex("{}", m.create(positions))).reshape(rows, 1, c.hiddenSize());
        }

        @Override
        public NDArray[] rope(Rope rope, NDManager m) {
            NDArray[] cs = rope.tables(m, positions, dtype);
            return new NDArray[] {cs[0].reshape(rows, 1, 1, c.headDim()), cs[1].reshape(rows, 1, 1, c.headDim())};
        }

        @Override
        public NDArray mask(NDManager m, int window) {
            int s = cache.maxLength(rows) + 1;
            float[] mask = new float[rows * s];
            boolean any = false;
            for (int r = 0; r < rows; r++) {
                long q = positions[r];
                for (int j = 0; j < s; j++) {
                    if (j > q || (window > 0 && q - j >= window)) {
                        mask[r * s + j] = Float.NEGATIVE_INFINITY;
                        any = true;
                    }
                }
            }
            return any ? m.create(mask, new Shape(rows, 1, 1, 1, s)).toType(dtype, false) : null;
        }

        @Override
        public NDArray[] append(int layer, NDArray k, NDArray v) {
            if (write == null) {
                write = cache.writeIndex(k.getManager(), rows);
            }
            return cache.append(layer, k, v, write);
        }

        @Override
        public void advance() {
            cache.advance(rows);
        }
    }

    /** (..., d) -> (..., vocab) through lm_head (compact: {@link #LM_HEAD_BLOCK_BYTES} of it widened at a time). */
    public NDArray logits(NDArray hidden) {
        return w.byRows(w.lmHead(), hidden.getManager(), LM_HEAD_BLOCK_BYTES,
                head -> Linear.linear(hidden, head).singletonOrThrow());
    }

    /** The widened rows of a compact lm_head or embedding held at once (64 MB: 8192 rows of a 2048-wide model). */
    public static final long LM_HEAD_BLOCK_BYTES = 64L << 20;

    // ---------------------------------------------------------------- building blocks

    /** {@code x W^T (+ b)}; b may be null. */
    public static NDArray linear(NDArray x, NDArray weight, NDArray bias) {
        NDArray y = Linear.linear(x, weight).singletonOrThrow();
        return bias == null ? y : y.add(bias);
    }

    /** The norm with its scale (batch, t, 1) as a hook site. */
    NDArray norm(NDArray x, Weights.Norm n, Site scaleSite, Hooks hooks, HookContext ctx) {
        NDArray s = hooks.run(scaleSite, normScale(x), ctx);
        return applyNorm(x, s, n, true);
    }

    /**
     * The norm's data-dependent factor over the last axis, kept as (..., 1): RMSNorm {@code rsqrt(mean(x^2) + eps)},
     * LayerNorm {@code rsqrt(var(x) + eps)}.
     */
    public NDArray normScale(NDArray x) {
        NDArray v = f.norm() == Family.NormKind.LAYER ? center(x) : x;
        return rsqrtPlusEps(v.square().mean(new int[] {-1}, true));
    }

    /**
     * The norm with a given scale: RMSNorm {@code x * s * w}; LayerNorm {@code (x - mean(x)) * s * w (+ b)}.
     * Linear in x for a fixed s (affine with the bias).
     */
    public NDArray applyNorm(NDArray x, NDArray scale, Weights.Norm n, boolean withBias) {
        NDArray v = f.norm() == Family.NormKind.LAYER ? center(x) : x;
        NDArray y = v.mul(scale).mul(n.weight());
        return withBias && n.bias() != null ? y.add(n.bias()) : y;
    }

    private static NDArray center(NDArray x) {
        return x.sub(x.mean(new int[] {-1}, true));
    }

    private NDArray attention(int layer, Weights.Layer lw, NDArray h, NDArray[] cosSin, NDArray mask, Layout at,
                              Hooks hooks, HookContext ctx) {
        long b = h.getShape().get(0);
        long t = h.getShape().get(1);
        int hd = c.headDim();
        int kvh = c.numKvHeads();
        int g = c.groupSize();
        NDArray q = linear(h, lw.wq(), lw.bq());
        NDArray k = linear(h, lw.wk(), lw.bk());
        NDArray v = linear(h, lw.wv(), lw.bv());
        if (f.qkNorm() == Family.QkNorm.FULL) { // OLMo 2: over the whole projection
            q = applyRms(q, lw.qNorm());
            k = applyRms(k, lw.kNorm());
        }
        // split into heads: q (b, heads, t, hd), k and v (b, kvHeads, t, hd)
        q = q.reshape(b, t, c.numHeads(), hd);
        k = k.reshape(b, t, kvh, hd);
        if (f.qkNorm() == Family.QkNorm.PER_HEAD) { // Qwen 3, Gemma 3: per head, before RoPE
            q = applyRms(q, lw.qNorm());
            k = applyRms(k, lw.kNorm());
        }
        q = q.transpose(0, 2, 1, 3);
        k = k.transpose(0, 2, 1, 3);
        v = v.reshape(b, t, kvh, hd).transpose(0, 2, 1, 3);
        if (cosSin != null) {
            q = applyRope(q, cosSin);
            k = applyRope(k, cosSin);
        }
        NDArray[] kv = at.append(layer, k, v);
        k = kv[0];
        v = kv[1];
        long s = k.getShape().get(2);
        // GQA without copying keys: query heads of one kv head side by side, (b, kvHeads, g * t, hd)
        NDArray qg = q.reshape(b, kvh, g * t, hd);
        NDArray scores = qg.matMul(k.transpose(0, 1, 3, 2)).mul(num.attnScale);
        if (mask != null) { // (t, s) or, per row, (b, 1, 1, 1, s) over the query positions of each head
            scores = scores.reshape(b, kvh, g, t, s).add(mask).reshape(b, kvh, g * t, s);
        }
        NDArray probs = scores.softmax(-1);
        Site patternSite = new Site(layer, Point.ATTN_PATTERN);
        if (hooks.has(patternSite)) { // (b, heads, t, s): head h = kvHead * g + j, as HF's repeat_kv
            probs = hooks.run(patternSite, probs.reshape(b, c.numHeads(), t, s), ctx).reshape(b, kvh, g * t, s);
        }
        NDArray out = probs.matMul(v);               // (b, kvHeads, g * t, hd) = (b, heads, t, hd)
        out = t == 1 ? out.reshape(b, 1, (long) c.numHeads() * hd) // one position: heads already in order
                : out.reshape(b, c.numHeads(), t, hd).transpose(0, 2, 1, 3).reshape(b, t, (long) c.numHeads() * hd);
        return linear(out, lw.wo(), lw.bo());
    }

    /** RMSNorm of QK-norm (no hook: queries and keys only set the attention pattern, which is a site). */
    private NDArray applyRms(NDArray x, Weights.Norm n) {
        NDArray s = rsqrtPlusEps(x.square().mean(new int[] {-1}, true));
        return x.mul(s).mul(n.weight());
    }

    private NDArray applyRope(NDArray x, NDArray[] cosSin) {
        return x.mul(cosSin[0]).add(x.matMul(rotateHalf).mul(cosSin[1]));
    }

    private NDArray mlp(int layer, Weights.Layer lw, NDArray h, Hooks hooks, HookContext ctx) {
        NDArray lin = mlpLinear(lw, h, true);
        NDArray factor = switch (f.mlp()) {
            case GATED -> activation(linear(h, lw.gate(), null));
            case GATED_PHI -> Activation.sigmoid(lin).mul(linear(h, lw.up(), null));
            case PLAIN -> activationOverInput(lin);
        };
        factor = hooks.run(new Site(layer, Point.MLP_GATE), factor, ctx);
        return mlpOutput(lw, factor, lin, true);
    }

    /**
     * The part of the MLP that stays linear in its input once the factor at {@link Point#MLP_GATE} is fixed:
     * up(x) (gated), gate(x) (Phi-3), fc1(x) (plain, with its bias when {@code withBias}).
     */
    public NDArray mlpLinear(Weights.Layer lw, NDArray h, boolean withBias) {
        return switch (f.mlp()) {
            case GATED -> linear(h, lw.up(), null);
            case GATED_PHI -> linear(h, lw.gate(), null);
            case PLAIN -> linear(h, lw.up(), withBias ? lw.bUp() : null);
        };
    }

    /** {@code down(factor * linearPart) (+ bias)}. */
    public NDArray mlpOutput(Weights.Layer lw, NDArray factor, NDArray linearPart, boolean withBias) {
        return linear(factor.mul(linearPart), lw.down(), withBias ? lw.bDown() : null);
    }

    private NDArray activation(NDArray z) {
        return switch (f.activation()) {
            case SILU -> silu(z);
            case GELU_TANH -> z.mul(activationOverInput(z));
        };
    }

    /** act(z)/z, finite everywhere: GELU-tanh gives 0.5 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))). */
    private NDArray activationOverInput(NDArray z) {
        if (f.activation() != Family.Activation.GELU_TANH) {
            throw new IllegalStateException("a plain MLP needs GELU");
        }
        NDArray inner = z.add(z.pow(num.three).mul(num.geluCubic)).mul(num.geluScale);
        return inner.tanh().add(num.one).mul(num.half);
    }

    /**
     * The forward pass's numeric constants as 0-dim tensors made once per model and dtype (see {@link #scalar}):
     * float64 beside float64, else float32, which half-precision ops take at float precision; the embedding scale in
     * the model dtype, rounded as HF rounds it.
     */
    private static final class Constants {
        final NDArray embedScale;
        final NDArray attnScale;
        final NDArray eps;
        final NDArray minusHalf;
        final NDArray three;
        final NDArray geluCubic;
        final NDArray geluScale;
        final NDArray one;
        final NDArray half;

        Constants(NDManager owner, ModelConfig c, DataType dtype) {
            DataType dt = dtype == DataType.FLOAT64 ? DataType.FLOAT64 : DataType.FLOAT32;
            embedScale = kept(owner, Math.sqrt(c.hiddenSize()), dtype);
            attnScale = kept(owner, c.attentionScale(), dt);
            eps = kept(owner, c.rmsNormEps(), dt);
            minusHalf = kept(owner, -0.5, dt);
            three = kept(owner, 3, dt);
            geluCubic = kept(owner, 0.044715, dt);
            geluScale = kept(owner, Math.sqrt(2 / Math.PI), dt);
            one = kept(owner, 1, dt);
            half = kept(owner, 0.5, dt);
        }

        /** A scalar owned by {@code owner} for the model's life, out of any NDScope open now. */
        private static NDArray kept(NDManager owner, double v, DataType dtype) {
            NDArray own = scalar(owner, v, dtype);
            NDScope.unregister(own);
            return own;
        }
    }

    /** {@code (m + eps)^(-1/2)}, with the exponent and eps as tensors of their own (see {@link #scalar}). */
    private NDArray rsqrtPlusEps(NDArray meanSquare) {
        return meanSquare.add(num.eps).pow(num.minusHalf);
    }

    /**
     * {@code v} as a 0-dim tensor whose memory PyTorch owns: float64 beside float64 arrays, else float32 (a 0-dim
     * operand does not change the other's dtype, and half-precision ops take it at float precision, as before).
     * Never pass a Number to an NDArray op on a path autograd may differentiate: DJL wraps the number in a tensor
     * over a direct buffer (from_blob), uses it and closes it, while the autograd graph keeps the tensor for the
     * backward pass (pow and mul save their operands); once the garbage collector frees that buffer, the backward pass
     * reads whatever the memory holds by then (wrong ordinary Jacobians and NaN losses under concurrent load).
     */
    public static NDArray scalar(NDArray like, double v) {
        DataType dtype = like.getDataType() == DataType.FLOAT64 ? DataType.FLOAT64 : DataType.FLOAT32;
        return scalar(like.getManager(), v, dtype);
    }

    /** As {@link #scalar(NDArray, double)}: in {@code m}, in a given dtype. */
    public static NDArray scalar(NDManager m, double v, DataType dtype) {
        try (NDArray blob = m.create(v)) {
            NDArray typed = blob.toType(dtype, false);
            return typed == blob ? blob.duplicate() : typed;
        }
    }

    /** silu(x) = x * sigmoid(x). */
    public static NDArray silu(NDArray x) {
        return x.mul(Activation.sigmoid(x));
    }

    /**
     * (t, start + t): 0 where query start + i may see key j, -inf elsewhere: causal (j <= start + i) and, with a
     * window w, {@code start + i - j < w}. Null when nothing is masked (one query with the whole cache in view).
     */
    private NDArray mask(NDManager m, int start, int t, int window) {
        int s = start + t;
        float[] mask = new float[t * s];
        boolean any = false;
        for (int i = 0; i < t; i++) {
            int q = start + i;
            for (int j = 0; j < s; j++) {
                if (j > q || (window > 0 && q - j >= window)) {
                    mask[i * s + j] = Float.NEGATIVE_INFINITY;
                    any = true;
                }
            }
        }
        return any ? m.create(mask, new Shape(t, s)).toType(dtype, false) : null;
    }
}
