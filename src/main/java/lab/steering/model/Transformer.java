package lab.steering.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import lab.steering.hook.HookContext;
import lab.steering.hook.Hooks;
import lab.steering.hook.Point;
import lab.steering.hook.Site;

/**
 * The Llama-family decoder forward pass: RMSNorm, RoPE, grouped-query causal attention, SwiGLU MLP.
 * It knows nothing about steering or Jacobians: everything outside reads or changes activations through
 * {@link Hooks} at typed {@link Site}s. Temporaries are created in the manager of the input ids; callers
 * wrap calls in an NDScope (or close that manager) to free them.
 */
public final class Transformer {

    private final ModelConfig c;
    private final Weights w;
    private final DataType dtype;
    private final Rope rope;
    private final NDArray rotateHalf; // (headDim, headDim)
    private final double scale;       // 1 / sqrt(headDim)

    public Transformer(ModelConfig c, Weights w, NDManager owner) {
        this.c = c;
        this.w = w;
        this.dtype = w.embed().getDataType();
        this.rope = new Rope(c);
        this.rotateHalf = rope.rotateHalfMatrix(owner, dtype);
        this.scale = 1.0 / Math.sqrt(c.headDim());
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
        NDManager m = ids.getManager();
        int t = (int) ids.getShape().get(1);
        int start = cache == null ? 0 : cache.length();
        HookContext ctx = new HookContext(start, t, ids.get(0).toLongArray());

        // embedding lookup: (batch, t, d); Llama applies no scaling
        NDArray x = w.embed().get(new NDIndex("{}", ids));
        x = hooks.run(Site.embed(), x, ctx);

        NDArray[] cosSin = rope.tables(m, start, t, dtype); // (t, headDim) each
        NDArray mask = t == 1 ? null : causalMask(m, start, t); // (t, start + t)

        for (int l = 0; l < c.numLayers(); l++) {
            Weights.Layer lw = w.layers().get(l);
            x = hooks.run(Site.residPre(l), x, ctx);
            NDArray attn = attention(l, lw, rmsNorm(x, lw.attnNorm(), new Site(l, Point.LN1_SCALE), hooks, ctx),
                    cosSin, mask, cache, hooks, ctx);
            attn = hooks.run(Site.attnOut(l), attn, ctx);
            x = x.add(attn);
            x = hooks.run(new Site(l, Point.RESID_MID), x, ctx);
            NDArray mlp = mlp(l, lw, rmsNorm(x, lw.mlpNorm(), new Site(l, Point.LN2_SCALE), hooks, ctx), hooks, ctx);
            mlp = hooks.run(Site.mlpOut(l), mlp, ctx);
            x = x.add(mlp);
            x = hooks.run(Site.residPost(l), x, ctx);
        }
        if (cache != null) {
            cache.advance(t);
        }
        x = rmsNorm(x, w.finalNorm(), new Site(-1, Point.FINAL_SCALE), hooks, ctx);
        return hooks.run(Site.finalNorm(), x, ctx);
    }

    /** (..., d) -> (..., vocab) through lm_head. */
    public NDArray logits(NDArray hidden) {
        return Linear.linear(hidden, w.lmHead()).singletonOrThrow();
    }

    /** {@code x * rsqrt(mean(x^2) + eps) * weight} over the last axis; the scale (batch, t, 1) is a hook site. */
    NDArray rmsNorm(NDArray x, NDArray weight, Site scaleSite, Hooks hooks, HookContext ctx) {
        NDArray inv = rmsScale(x);
        inv = hooks.run(scaleSite, inv, ctx);
        return x.mul(inv).mul(weight);
    }

    /** rsqrt(mean(x^2) + eps) over the last axis, kept as (..., 1). */
    public NDArray rmsScale(NDArray x) {
        return x.square().mean(new int[] {-1}, true).add(c.rmsNormEps()).pow(-0.5);
    }

    private NDArray attention(int layer, Weights.Layer lw, NDArray h, NDArray[] cosSin, NDArray mask, KvCache cache,
                              Hooks hooks, HookContext ctx) {
        long b = h.getShape().get(0);
        long t = h.getShape().get(1);
        int hd = c.headDim();
        int kvh = c.numKvHeads();
        int g = c.groupSize();
        // projections, split into heads: q (b, heads, t, hd), k and v (b, kvHeads, t, hd)
        NDArray q = Linear.linear(h, lw.wq()).singletonOrThrow().reshape(b, t, c.numHeads(), hd).transpose(0, 2, 1, 3);
        NDArray k = Linear.linear(h, lw.wk()).singletonOrThrow().reshape(b, t, kvh, hd).transpose(0, 2, 1, 3);
        NDArray v = Linear.linear(h, lw.wv()).singletonOrThrow().reshape(b, t, kvh, hd).transpose(0, 2, 1, 3);
        q = applyRope(q, cosSin);
        k = applyRope(k, cosSin);
        if (cache != null) {
            NDArray[] kv = cache.append(layer, k, v);
            k = kv[0];
            v = kv[1];
        }
        long s = k.getShape().get(2);
        // GQA without copying keys: query heads of one kv head side by side, (b, kvHeads, g * t, hd)
        NDArray qg = q.reshape(b, kvh, g * t, hd);
        NDArray scores = qg.matMul(k.transpose(0, 1, 3, 2)).mul(scale).reshape(b, kvh, g, t, s);
        if (mask != null) {
            scores = scores.add(mask);
        }
        NDArray probs = scores.softmax(-1);
        Site patternSite = new Site(layer, Point.ATTN_PATTERN);
        if (hooks.has(patternSite)) { // (b, heads, t, s): head h = kvHead * g + j, as HF's repeat_kv
            probs = hooks.run(patternSite, probs.reshape(b, c.numHeads(), t, s), ctx);
        }
        probs = probs.reshape(b, kvh, g * t, s);
        NDArray out = probs.matMul(v)                // (b, kvHeads, g * t, hd)
                .reshape(b, c.numHeads(), t, hd)
                .transpose(0, 2, 1, 3)
                .reshape(b, t, (long) c.numHeads() * hd);
        return Linear.linear(out, lw.wo()).singletonOrThrow();
    }

    private NDArray applyRope(NDArray x, NDArray[] cosSin) {
        return x.mul(cosSin[0]).add(x.matMul(rotateHalf).mul(cosSin[1]));
    }

    private NDArray mlp(int layer, Weights.Layer lw, NDArray h, Hooks hooks, HookContext ctx) {
        NDArray gate = Linear.linear(h, lw.gate()).singletonOrThrow();
        NDArray up = Linear.linear(h, lw.up()).singletonOrThrow();
        NDArray act = hooks.run(new Site(layer, Point.MLP_GATE), silu(gate), ctx);
        return Linear.linear(act.mul(up), lw.down()).singletonOrThrow();
    }

    /** silu(x) = x * sigmoid(x). */
    public static NDArray silu(NDArray x) {
        return x.mul(Activation.sigmoid(x));
    }

    /** (t, start + t): 0 where query start + i may see key j (j <= start + i), -inf elsewhere. */
    private NDArray causalMask(NDManager m, int start, int t) {
        int s = start + t;
        float[] mask = new float[t * s];
        for (int i = 0; i < t; i++) {
            for (int j = start + i + 1; j < s; j++) {
                mask[i * s + j] = Float.NEGATIVE_INFINITY;
            }
        }
        return m.create(mask, new Shape(t, s)).toType(dtype, false);
    }
}
