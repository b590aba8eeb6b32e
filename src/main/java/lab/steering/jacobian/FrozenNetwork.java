package lab.steering.jacobian;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.function.Function;
import lab.steering.hook.Hook;
import lab.steering.hook.Hooks;
import lab.steering.hook.Point;
import lab.steering.hook.Site;
import lab.steering.model.Family;
import lab.steering.model.ModelConfig;
import lab.steering.model.Transformer;
import lab.steering.model.Weights;

/**
 * The detached network of one prompt (METHOD.md section 1): the ordinary forward pass is run once with read hooks
 * that record every nonlinear factor (norm scales, attention probabilities, MLP gate activations); with those
 * frozen, the network from the input embeddings to any residual is linear. This class evaluates that linear
 * network ({@link #layers}) and its transpose ({@link #transpose}, {@link #layerT} and the branch transposes),
 * batched over many inputs or cotangents at once.
 *
 * <p>All arrays live until the caller's NDScope closes. Batch 1 for recorded arrays; B for inputs/cotangents.
 */
final class FrozenNetwork {

    final Transformer tf;
    final ModelConfig c;
    final Weights w;
    final int tokens;
    final long[] ids;

    final NDArray[] resid;      // L + 1 of (1, T, d): resid[l] = HF hidden_states[l] (resid[L] before the final norm)
    final NDArray[] ln1;        // L of (1, T, 1) attention-norm scales
    final NDArray[] pattern;    // L of (1, heads, T, T) attention probabilities
    final NDArray[] attnOut;    // L of (1, T, d)
    final NDArray[] ln1Post;    // L of (1, T, 1) attention-output norm scales (OLMo 2, Gemma 3), else null entries
    final NDArray[] ln2;        // L of (1, T, 1) MLP-norm scales
    final NDArray[] ln2Post;    // L of (1, T, 1) MLP-output norm scales (OLMo 2, Gemma 3)
    final NDArray[] gate;       // L of (1, T, intermediate) the MLP's frozen factor (Point.MLP_GATE)
    final NDArray[] mlpOut;     // L of (1, T, d)
    NDArray finalScale;         // (1, T, 1)
    NDArray output;             // (1, T, d) final-normed hidden states of the ordinary pass
    private NDArray[] mlpMatrices; // L of (T, d, d) or null entries: see {@link #precomputeMlp}
    private NDManager manager;     // the manager record() was given: owns what lives as long as this network

    private FrozenNetwork(Transformer tf, long[] ids) {
        this.tf = tf;
        this.c = tf.config();
        this.w = tf.weights();
        this.ids = ids;
        this.tokens = ids.length;
        int layers = c.numLayers();
        resid = new NDArray[layers + 1];
        ln1 = new NDArray[layers];
        pattern = new NDArray[layers];
        attnOut = new NDArray[layers];
        ln2 = new NDArray[layers];
        ln1Post = new NDArray[layers];
        ln2Post = new NDArray[layers];
        gate = new NDArray[layers];
        mlpOut = new NDArray[layers];
    }

    /** Runs the ordinary forward pass on {@code ids} in {@code tf}'s dtype and records the frozen factors. */
    static FrozenNetwork record(Transformer tf, NDManager m, long[] ids) {
        Family family = tf.config().family();
        if (family.norm() == Family.NormKind.LAYER && family.layout().postNorms()) {
            // the transpose folds norm weights and scales into the weights around them, which LayerNorm's centring
            // allows on a block's input but not on its output
            throw new UnsupportedOperationException("LayerNorm on block outputs (family " + family.modelType() + ")");
        }
        FrozenNetwork f = new FrozenNetwork(tf, ids);
        f.manager = m;
        int layers = f.c.numLayers();
        Hooks.Builder b = Hooks.builder();
        for (int l = 0; l < layers; l++) {
            b.add(Site.residPre(l), store(f.resid, l));
            b.add(new Site(l, Point.LN1_SCALE), store(f.ln1, l));
            b.add(new Site(l, Point.ATTN_PATTERN), store(f.pattern, l));
            b.add(Site.attnOut(l), store(f.attnOut, l));
            b.add(new Site(l, Point.LN2_SCALE), store(f.ln2, l));
            b.add(new Site(l, Point.LN1_POST_SCALE), store(f.ln1Post, l));
            b.add(new Site(l, Point.LN2_POST_SCALE), store(f.ln2Post, l));
            b.add(new Site(l, Point.MLP_GATE), store(f.gate, l));
            b.add(Site.mlpOut(l), store(f.mlpOut, l));
        }
        b.add(Site.residPost(layers - 1), store(f.resid, layers));
        b.add(new Site(-1, Point.FINAL_SCALE), (s, x, ctx) -> {
            f.finalScale = x;
            return x;
        });
        NDArray input = m.create(ids, new Shape(1, ids.length));
        f.output = tf.forward(input, null, b.build());
        return f;
    }

    private static Hook store(NDArray[] into, int index) {
        return (site, x, ctx) -> {
            into[index] = x;
            return x;
        };
    }

    DataType dtype() {
        return tf.dataType();
    }

    /** The input embeddings (1, T, d): HF hidden_states[0]. */
    NDArray embeddings() {
        return resid[0];
    }

    // ---------------------------------------------------------------- forward of the frozen (affine) network

    /**
     * The frozen network from the residual entering decoder layer {@code from} to the residual leaving layer
     * {@code to - 1}; the same DJL ops in the same order as {@link Transformer#forward}, so with the recorded
     * input it reproduces the ordinary pass bit for bit. With {@code affine} false every bias is left out: the
     * linear part, J applied to x (without the constant c).
     *
     * @param x (B, T, d)
     */
    NDArray layers(NDArray x, int from, int to, boolean affine) {
        for (int l = from; l < to; l++) {
            x = x.add(attnBranch(l, x, affine));
            x = x.add(mlpBranch(l, x, affine));
        }
        return x;
    }

    /** {@link #layers(NDArray, int, int, boolean)} with the biases: the frozen network itself. */
    NDArray layers(NDArray x, int from, int to) {
        return layers(x, from, to, true);
    }

    /** Frozen final norm: (B, T, d) -> (B, T, d) with the recorded scales. */
    NDArray finalNorm(NDArray x) {
        return tf.applyNorm(x, finalScale, w.finalNorm(), true);
    }

    NDArray attnBranch(int l, NDArray x, boolean affine) {
        return inLayer(l, Weights.Block.ATTENTION, x, lw -> attnBranch(lw, l, x, affine));
    }

    private NDArray attnBranch(Weights.Layer lw, int l, NDArray x, boolean affine) {
        long b = x.getShape().get(0);
        int hd = c.headDim();
        int kvh = c.numKvHeads();
        int g = c.groupSize();
        NDArray h = lw.attnNorm() == null ? x : tf.applyNorm(x, ln1[l], lw.attnNorm(), affine);
        NDArray v = Transformer.linear(h, lw.wv(), affine ? lw.bv() : null)
                .reshape(b, tokens, kvh, hd).transpose(0, 2, 1, 3);
        NDArray probs = pattern[l].reshape(1, kvh, (long) g * tokens, tokens);
        NDArray out = probs.matMul(v)
                .reshape(b, c.numHeads(), tokens, hd)
                .transpose(0, 2, 1, 3)
                .reshape(b, tokens, (long) c.numHeads() * hd);
        out = Transformer.linear(out, lw.wo(), affine ? lw.bo() : null);
        return lw.attnPostNorm() == null ? out : tf.applyNorm(out, ln1Post[l], lw.attnPostNorm(), affine);
    }

    NDArray mlpBranch(int l, NDArray x, boolean affine) {
        return inLayer(l, Weights.Block.MLP, x, lw -> mlpBranch(lw, l, x, affine));
    }

    private NDArray mlpBranch(Weights.Layer lw, int l, NDArray x, boolean affine) {
        NDArray h = lw.mlpNorm() == null ? x : tf.applyNorm(x, ln2[l], lw.mlpNorm(), affine);
        NDArray out = tf.mlpOutput(lw, gate[l], tf.mlpLinear(lw, h, affine), affine);
        return lw.mlpPostNorm() == null ? out : tf.applyNorm(out, ln2Post[l], lw.mlpPostNorm(), affine);
    }

    /**
     * {@code body} on the weights of {@code block} of decoder layer {@code l}, compact ones widened for this call into
     * a manager closed when it returns (the widened matrices and every array computed from them, the matrix first, go
     * with it); the result is moved to the manager of {@code input}, the activation or cotangent the layer runs on.
     */
    private NDArray inLayer(int l, Weights.Block block, NDArray input, Function<Weights.Layer, NDArray> body) {
        try (NDManager weights = input.getManager().newSubManager()) {
            NDArray out = body.apply(w.layer(l, weights, block));
            out.attach(input.getManager());
            return out;
        }
    }

    // ---------------------------------------------------------------- transpose (cotangents as columns)

    /*
     * Cotangents travel as columns, (d, T, B): the d coordinates, then the positions, then the B cotangents. Every
     * weight product is then one plain matrix product, W^T (in, out) times (out, T * B), with no copy before or after
     * it; attention mixes positions per head as one batched product over (head, head dim); the per-token MLP matrices
     * are one batched product over T that reads its input through a strided view and whose output the residual add
     * turns back into this layout. Row-major cotangents (B, T, d) needed a copy around almost every product.
     */

    /**
     * Transpose of {@link #attnBranch} on columns: (d, Tq, B) at the block output -> (d, T, B) at its input. With
     * {@code lastOnly} the cotangent is at the last position alone (Tq = 1: zero elsewhere, as at the top layer of a
     * target) and only that query's row of each pattern is used. The frozen norms' scales are folded into the
     * position mixing and their weights into W_o and W_v, so no pass over the cotangents is spent on them; W_o^T's
     * rows are taken in (kv head, head dim, group member) order, so that the mixing also adds up the query heads of
     * each kv head.
     */
    NDArray attnBranchT(int l, NDArray cot, boolean lastOnly) {
        return inLayer(l, Weights.Block.ATTENTION, cot, lw -> attnBranchT(lw, l, cot, lastOnly));
    }

    private NDArray attnBranchT(Weights.Layer lw, int l, NDArray cot, boolean lastOnly) {
        long tq = cot.getShape().get(1);
        long b = cot.getShape().get(2);
        int d = c.hiddenSize();
        int hd = c.headDim();
        int kvh = c.numKvHeads();
        int g = c.groupSize();
        NDArray wo = lw.attnPostNorm() == null ? lw.wo() : lw.wo().mul(lw.attnPostNorm().weight().reshape(d, 1));
        NDArray woT = wo.reshape(d, kvh, g, hd).transpose(1, 3, 2, 0).reshape((long) kvh * hd * g, d);
        NDArray u = woT.matMul(cot.reshape(d, tq * b)).reshape(kvh, hd, g * tq, b); // rows (kv, e), columns (j, i, b)
        // mix[kv, 0, p, (j, i)] = s1[p] A_{kv g + j}[i, p] s1post[i]: A^T per head, heads of a kv head side by side
        NDArray probs = (lastOnly ? pattern[l].get(LAST_QUERY) : pattern[l]).reshape(kvh, g, tq, tokens);
        if (lw.attnPostNorm() != null) {
            probs = probs.mul(at(ln1Post[l], lastOnly).reshape(1, 1, tq, 1));
        }
        if (lw.attnNorm() != null) {
            probs = probs.mul(ln1[l].reshape(1, 1, 1, tokens));
        }
        NDArray mix = probs.transpose(0, 3, 1, 2).reshape(kvh, 1, tokens, g * tq);
        NDArray vBar = mix.matMul(u).reshape((long) kvh * hd, tokens * b);          // (kvh * hd, T * B)
        NDArray wv = lw.attnNorm() == null ? lw.wv() : lw.wv().mul(lw.attnNorm().weight().reshape(1, d));
        NDArray in = wv.transpose().matMul(vBar).reshape(d, tokens, b);
        return lw.attnNorm() == null ? in : centred(in);
    }

    /**
     * From now on the MLP transposes multiply by one d x d matrix per token, {@code down diag(g_t) W} (made once per
     * layer, on first use), instead of by the two d x ff weights: with all d cotangent rows pushed that is
     * {@code 2 T d^2 ff + 2 T d^3} multiply-adds per layer against {@code 4 T d^2 ff}, fewer whenever d < ff. The
     * matrices take {@link #mlpMatrixBytes} in all.
     */
    void precomputeMlp() {
        if (mlpMatrices == null) {
            mlpMatrices = new NDArray[c.numLayers()];
        }
    }

    /** Memory of the per-token MLP matrices of every layer ({@link #precomputeMlp}). */
    static long mlpMatrixBytes(ModelConfig c, int tokens, DataType dtype) {
        return (long) c.numLayers() * tokens * c.hiddenSize() * c.hiddenSize() * dtype.getNumOfBytes();
    }

    /** Whether a full pass with {@code chunkBytes} uses the per-token MLP matrices: they take at most half of it. */
    static boolean mlpMatricesFit(ModelConfig c, int tokens, DataType dtype, long chunkBytes) {
        return mlpMatrixBytes(c, tokens, dtype) <= chunkBytes / 2;
    }

    /**
     * Transpose of {@link #mlpBranch} on columns (d, Tq, B); {@code lastOnly} as in {@link #attnBranchT}. The norms'
     * scales are folded into the frozen factor and their weights into the two MLP weights (or into the per-token
     * matrices). The result may be a strided view of a (Tq, d, B) array (the per-token matrices' output).
     */
    NDArray mlpBranchT(int l, NDArray cot, boolean lastOnly) {
        return inLayer(l, Weights.Block.MLP, cot, lw -> mlpBranchT(lw, l, cot, lastOnly));
    }

    private NDArray mlpBranchT(Weights.Layer lw, int l, NDArray cot, boolean lastOnly) {
        long tq = cot.getShape().get(1);
        long b = cot.getShape().get(2);
        NDArray in;
        if (mlpMatrices == null || lastOnly) { // the two weights directly
            int d = c.hiddenSize();
            long ff = c.intermediateSize();
            NDArray factor = foldedFactor(l, lastOnly).reshape(tq, ff).transpose().reshape(ff, tq, 1);
            NDArray hidden = foldedDown(lw).transpose().matMul(cot.reshape(d, tq * b)).reshape(ff, tq, b).mul(factor);
            in = foldedLinear(lw).transpose().matMul(hidden.reshape(ff, tq * b)).reshape(d, tq, b);
        } else {
            if (mlpMatrices[l] == null) {
                mlpMatrices[l] = mlpMatrices(l, lw);
            }
            // per token: mat_t^T (d, d) x cot_t (d, B), read through a (T, d, B) view; out (T, d, B) seen as (d, T, B)
            in = mlpMatrices[l].transpose(0, 2, 1).matMul(cot.transpose(1, 0, 2)).transpose(1, 0, 2);
        }
        return lw.mlpNorm() == null ? in : centred(in);
    }

    /**
     * Layer l's per-token MLP matrices (T, d, d), {@code mat_t = diag(w_post) down diag(g_t) W diag(w)} (the norms
     * folded in: {@link #foldedFactor}, {@link #foldedDown}, {@link #foldedLinear}). Owned by the network's manager:
     * every chunk uses them.
     */
    private NDArray mlpMatrices(int l, Weights.Layer lw) {
        // (d, ff) * (T, 1, ff) -> (T, d, ff), times (ff, d): (T, d, d)
        NDArray mat = foldedDown(lw).mul(foldedFactor(l, false).reshape(tokens, 1, -1)).matMul(foldedLinear(lw));
        NDScope.unregister(mat); // made inside one chunk's scope, used by every chunk
        mat.attach(manager);
        return mat;
    }

    /** The MLP's frozen factor (1, Tq, ff) times the scales of its input and output norms. */
    private NDArray foldedFactor(int l, boolean lastOnly) {
        NDArray factor = at(gate[l], lastOnly);
        if (ln2[l] != null) {
            factor = factor.mul(at(ln2[l], lastOnly));
        }
        return ln2Post[l] == null ? factor : factor.mul(at(ln2Post[l], lastOnly));
    }

    /** down_proj (d, ff) with the output norm's weight folded in: {@code diag(w) down}. */
    private NDArray foldedDown(Weights.Layer lw) {
        return lw.mlpPostNorm() == null ? lw.down()
                : lw.down().mul(lw.mlpPostNorm().weight().reshape(c.hiddenSize(), 1));
    }

    /** The MLP's linear input weight (ff, d) with the input norm's weight folded in: {@code W diag(w)}. */
    private NDArray foldedLinear(Weights.Layer lw) {
        NDArray linear = c.family().mlp() == Family.Mlp.GATED_PHI ? lw.gate() : lw.up();
        return lw.mlpNorm() == null ? linear : linear.mul(lw.mlpNorm().weight().reshape(1, c.hiddenSize()));
    }

    /**
     * A pre-norm's transpose once its scale and weight are folded in: LayerNorm's centring over d (its projection
     * x - mean(x) is symmetric); nothing for RMSNorm.
     */
    private NDArray centred(NDArray cot) {
        return c.family().norm() == Family.NormKind.LAYER ? cot.sub(cot.mean(new int[] {0}, true)) : cot;
    }

    private static final NDIndex LAST_POSITION = new NDIndex(":, -1:");
    private static final NDIndex LAST_QUERY = new NDIndex(":, :, -1:, :");

    /** A recorded (1, T, ...) factor, or its last position (1, 1, ...). */
    private static NDArray at(NDArray factor, boolean lastOnly) {
        return lastOnly && factor != null ? factor.get(LAST_POSITION) : factor;
    }

    /**
     * Transpose of a norm with frozen scale on columns (d, Tq, B): {@code cot * w * s}, centred over d for LayerNorm
     * (the transpose of {@link Transformer#applyNorm} without bias); {@code scale} is the recorded (1, Tq, 1). Used
     * for the final norm; the blocks' norms are folded into their weights.
     */
    private NDArray normT(NDArray cot, NDArray scale, Weights.Norm n) {
        return centred(cot.mul(n.weight().reshape(-1, 1, 1)).mul(scale.reshape(1, -1, 1)));
    }

    /** (d, 1, B) at the last position -> (d, T, B), zero elsewhere. */
    private NDArray atLastPosition(NDArray last) {
        if (tokens == 1) {
            return last;
        }
        long b = last.getShape().get(2);
        return last.getManager().zeros(new Shape(c.hiddenSize(), tokens - 1, b), last.getDataType()).concat(last, 1);
    }

    /** Transpose of decoder layer {@code l} (residual adds included) on columns (d, T, B). */
    NDArray layerT(int l, NDArray cot) {
        NDArray mid = cot.add(mlpBranchT(l, cot, false));
        return mid.add(attnBranchT(l, mid, false));
    }

    /** The activation (1, T, d) whose final norm at the last position is the target's output. */
    NDArray targetActivation(Target t) {
        return switch (t.component()) {
            case LAYER -> resid[t.layer()];
            case ATTN -> attnOut[t.layer() - 1];
            case MLP -> mlpOut[t.layer() - 1];
        };
    }

    /** (1, 1, 1) final-norm scale of the target activation at the last position (recorded for the output). */
    NDArray targetScale(Target t) {
        if (t.component() == Target.Component.LAYER && t.layer() == c.numLayers()) {
            return finalScale.get(new NDIndex(":, -1:, :"));
        }
        return tf.normScale(targetActivation(t).get(new NDIndex(":, -1:, :")));
    }

    /** The target's output y (d), frozen-network value at the recorded input: finalnorm(activation)[T-1]. */
    NDArray targetOutput(Target t) {
        NDArray last = targetActivation(t).get(new NDIndex(0, -1));
        return tf.applyNorm(last, targetScale(t).reshape(1), w.finalNorm(), true);
    }

    /** The input the target's Jacobian is taken with respect to (1, T, d). */
    NDArray targetInput(Target t) {
        return t.mode() == Target.Mode.CUMULATIVE ? resid[0] : resid[t.layer() - 1];
    }

    /**
     * Pushes output-space cotangents (B, d) back to the target's input: the rows {@code seed J_i} for every token i,
     * as (B, T, d).
     */
    NDArray transpose(Target t, NDArray seed) {
        return transposeColumns(t, seed).transpose(2, 1, 0);
    }

    /** As {@link #transpose}, the result as columns (d, T, B): entry (k, i, b) is {@code (seed_b J_i)_k}. */
    NDArray transposeColumns(Target t, NDArray seed) {
        long b = seed.getShape().get(0);
        // the target reads the last position only: its cotangent, (d, 1, B), is zero at every other position until
        // the top layer's attention spreads it, so that layer's MLP and W_o run on one position
        NDArray last = normT(seed.transpose().reshape(c.hiddenSize(), 1, b), targetScale(t), w.finalNorm());
        int top = t.layer() - 1; // decoder layer whose output (or sub-block) the target reads
        int bottom = t.mode() == Target.Mode.CUMULATIVE ? 0 : top;
        NDArray cot = switch (t.component()) {
            case LAYER -> {
                NDArray mid = last.add(mlpBranchT(top, last, true));
                yield atLastPosition(mid).add(attnBranchT(top, mid, true));
            }
            case ATTN -> attnBranchT(top, last, true);
            case MLP -> {
                NDArray mid = mlpBranchT(top, last, true);
                yield atLastPosition(mid).add(attnBranchT(top, mid, true));
            }
        };
        for (int l = top - 1; l >= bottom; l--) {
            cot = layerT(l, cot);
        }
        return cot;
    }

    /** The linear part of the frozen map, target input (B, T, d) -> (B, d): J applied to inputs (no constant). */
    NDArray apply(Target t, NDArray x) {
        return apply(t, x, false);
    }

    /**
     * The frozen map, target input (B, T, d) -> target output (B, d); with {@code affine} its biases are included
     * ({@code sum_i J_i x_i + c}), without them it is the linear part.
     */
    NDArray apply(Target t, NDArray x, boolean affine) {
        int top = t.layer() - 1;
        int bottom = t.mode() == Target.Mode.CUMULATIVE ? 0 : top;
        NDArray h = layers(x, bottom, top, affine);
        NDArray act = switch (t.component()) {
            case LAYER -> layers(h, top, top + 1, affine);
            case ATTN -> attnBranch(top, h, affine);
            case MLP -> mlpBranch(top, h.add(attnBranch(top, h, affine)), affine);
        };
        long b = act.getShape().get(0);
        NDArray last = act.get(new NDIndex(":, -1, :")).reshape(b, c.hiddenSize());
        return tf.applyNorm(last, targetScale(t).reshape(1), w.finalNorm(), affine);
    }

    /** The constant term c (d): the frozen network at x = 0 (zero for families without biases). */
    double[] constant(Target t) {
        if (!c.family().hasBiases()) {
            return new double[c.hiddenSize()];
        }
        NDArray x0 = targetInput(t).zerosLike();
        return apply(t, x0, true).get(0).toType(DataType.FLOAT64, false).toDoubleArray();
    }

    // ---------------------------------------------------------------- linear part on columns (matrix-free products)

    /*
     * The forward counterpart of the transpose on columns: inputs travel as (d, T', B) (coordinates, positions from
     * `from` to T - 1, B inputs), so that J_i v for many (i, v) is one batch of plain matrix products with the norms
     * folded into the weights exactly as the transpose folds them. Positions before `from` are left out: an input that
     * is zero there stays zero there in a causal network. The top layer runs at the last position only, which is all
     * the target reads. Used by LowRank; the row-layout {@link #apply} stays the bit-exact reproduction of the
     * ordinary pass.
     */

    /**
     * The linear part of the frozen map on columns: {@code x} (d, T - from, B) holds the target input at positions
     * from..T-1 (zero before them); returns (d, B), column b = {@code sum_i J_i x_b[i]}.
     */
    NDArray applyColumns(Target t, NDArray x, int from) {
        int d = c.hiddenSize();
        long b = x.getShape().get(2);
        int top = t.layer() - 1;
        int bottom = t.mode() == Target.Mode.CUMULATIVE ? 0 : top;
        NDArray h = x;
        for (int l = bottom; l < top; l++) {
            h = h.add(attnColumns(l, h, from, false));
            h = h.add(mlpColumns(l, h, from, false));
        }
        NDArray last = switch (t.component()) {
            case LAYER -> {
                NDArray mid = h.get(LAST_COLUMN).add(attnColumns(top, h, from, true));
                yield mid.add(mlpColumns(top, mid, from, true));
            }
            case ATTN -> attnColumns(top, h, from, true);
            case MLP -> mlpColumns(top, h.get(LAST_COLUMN).add(attnColumns(top, h, from, true)), from, true);
        };
        // frozen final norm at the last position: y = w * s * x (LayerNorm: centred first)
        NDArray y = centred(last.reshape(d, b));
        return y.mul(w.finalNorm().weight().reshape(d, 1)).mul(targetScale(t).reshape(1, 1));
    }

    private static final NDIndex LAST_COLUMN = new NDIndex(":, -1:, :");

    /**
     * {@link #attnBranch}'s linear part on columns: (d, Tp, B) at positions from..T-1 -> (d, Tq, B), Tq = Tp, or 1
     * (the last query) with {@code lastOnly}. The norm's scale goes into the position mixing and its weight into W_v
     * (W_o for a post-norm), as in {@link #attnBranchT}; V leaves W_v as (kv head, head dim, position, input), so the
     * mixing is one batched product over (kv head, head dim) and its output rows come out in (kv head, head dim,
     * group member) order, which W_o's columns are permuted to.
     */
    private NDArray attnColumns(int l, NDArray x, int from, boolean lastOnly) {
        return inLayer(l, Weights.Block.ATTENTION, x, lw -> attnColumns(lw, l, x, from, lastOnly));
    }

    private NDArray attnColumns(Weights.Layer lw, int l, NDArray x, int from, boolean lastOnly) {
        int d = c.hiddenSize();
        long tp = x.getShape().get(1);
        long b = x.getShape().get(2);
        long tq = lastOnly ? 1 : tp;
        int hd = c.headDim();
        int kvh = c.numKvHeads();
        int g = c.groupSize();
        NDArray wv = lw.attnNorm() == null ? lw.wv() : lw.wv().mul(lw.attnNorm().weight().reshape(1, d));
        NDArray in = lw.attnNorm() == null ? x : centred(x);
        NDArray v = wv.matMul(in.reshape(d, tp * b)).reshape(kvh, hd, tp, b);
        // mix[kv, 0, (j, q), p] = s1post[q] A_{kv g + j}[q, p] s1[p]
        NDArray probs = pattern[l].get(lastOnly ? new NDIndex(":, :, -1:, {}:", from)
                : new NDIndex(":, :, {}:, {}:", from, from)).reshape(kvh, g, tq, tp);
        if (lw.attnNorm() != null) {
            probs = probs.mul(ln1[l].get(new NDIndex(":, {}:, :", from)).reshape(1, 1, 1, tp));
        }
        if (lw.attnPostNorm() != null) {
            NDArray post = lastOnly ? ln1Post[l].get(LAST_POSITION) : ln1Post[l].get(new NDIndex(":, {}:", from));
            probs = probs.mul(post.reshape(1, 1, tq, 1));
        }
        NDArray o = probs.reshape(kvh, 1, g * tq, tp).matMul(v).reshape((long) kvh * hd * g, tq * b);
        NDArray wo = lw.attnPostNorm() == null ? lw.wo() : lw.wo().mul(lw.attnPostNorm().weight().reshape(d, 1));
        NDArray woCols = wo.reshape(d, kvh, g, hd).transpose(0, 1, 3, 2).reshape(d, (long) kvh * hd * g);
        return woCols.matMul(o).reshape(d, tq, b);
    }

    /**
     * {@link #mlpBranch}'s linear part on columns: (d, Tp, B) at positions from..T-1 (with {@code lastOnly}: its last
     * position is the network's last) -> (d, Tq, B). Through the per-token matrices once they exist (mat_t x_t, one
     * batched product over positions), else through the two weights with the folded factor.
     */
    private NDArray mlpColumns(int l, NDArray x, int from, boolean lastOnly) {
        return inLayer(l, Weights.Block.MLP, x, lw -> mlpColumns(lw, l, x, from, lastOnly));
    }

    private NDArray mlpColumns(Weights.Layer lw, int l, NDArray x, int from, boolean lastOnly) {
        int d = c.hiddenSize();
        long ff = c.intermediateSize();
        NDArray in = lastOnly && x.getShape().get(1) > 1 ? x.get(LAST_COLUMN) : x;
        if (lw.mlpNorm() != null) {
            in = centred(in);
        }
        long tq = in.getShape().get(1);
        long b = in.getShape().get(2);
        if (mlpMatrices != null && mlpMatrices[l] != null) {
            NDArray mat = lastOnly ? mlpMatrices[l].get(new NDIndex("-1:")) : mlpMatrices[l].get(new NDIndex("{}:", from));
            return mat.matMul(in.transpose(1, 0, 2)).transpose(1, 0, 2); // (Tq, d, B) seen as (d, Tq, B)
        }
        NDArray factor = foldedFactor(l, lastOnly);
        if (!lastOnly && from > 0) {
            factor = factor.get(new NDIndex(":, {}:", from));
        }
        factor = factor.reshape(tq, ff).transpose().reshape(ff, tq, 1);
        NDArray hidden = foldedLinear(lw).matMul(in.reshape(d, tq * b)).reshape(ff, tq, b).mul(factor);
        return foldedDown(lw).matMul(hidden.reshape(ff, tq * b)).reshape(d, tq, b);
    }
}
