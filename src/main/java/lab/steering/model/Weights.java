package lab.steering.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;

/**
 * The tensors of a decoder, in one layout for every family ({@code [out, in]} for projections, fused projections
 * split, GPT-2's Conv1D weights transposed), owned by one NDManager. Hugging Face weight key strings appear only in
 * {@link #load}. Absent parts (a family without biases, without pre-norms, ...) are null.
 * <p>
 * The norms are in the dtype of the computation ({@link #dataType()}); so is everything else, except the weight
 * matrices of a compact load ({@link WeightStorage#COMPACT}: embed, lmHead and the layers' projections stay in the
 * checkpoint's bfloat16 or float16, see {@link Compact}). The forward pass and the detached Jacobian therefore take a
 * layer through {@link #layer}, the embedding through {@link #embedding} and lm_head products through
 * {@link #byRows}, which widen what they need for the call and no more.
 *
 * @param embed     (vocab, d) token embeddings
 * @param positions (maxPositions, d) learned position embeddings (GPT-2), or null
 * @param layers    one entry per decoder layer
 * @param finalNorm the norm before lm_head
 * @param lmHead    (vocab, d) unembedding; the same array as {@code embed} when tied
 */
public record Weights(NDArray embed, NDArray positions, List<Layer> layers, Norm finalNorm, NDArray lmHead) {

    /**
     * A norm's parameters.
     *
     * @param weight (n) the multiplier actually applied (Gemma's 1 + w already added, in this array's dtype)
     * @param bias   (n) LayerNorm's bias, or null
     * @param stored (n) the checkpoint's w when the family adds an offset to it (Gemma: 1 + w), else null. Kept so that
     *               a copy in float64 forms 1 + w in float64: converting the float32 sum instead carried its float32
     *               rounding into every float64 Jacobian (issue 18: ~5e-8 relative on a tiny float32 checkpoint)
     * @param offset what {@code weight} adds to {@code stored} (0 without one)
     */
    public record Norm(NDArray weight, NDArray bias, NDArray stored, double offset) {

        public Norm(NDArray weight, NDArray bias) {
            this(weight, bias, null, 0);
        }

        /**
         * A copy in {@code dtype} by {@code convert}: the multiplier is formed from {@code stored} in float64, and is
         * the converted float32 multiplier in narrower dtypes (HF forms 1 + w in float32 for bfloat16 models).
         */
        Norm to(Function<NDArray, NDArray> convert, DataType dtype) {
            NDArray b = bias == null ? null : convert.apply(bias);
            if (stored == null) {
                return new Norm(convert.apply(weight), b);
            }
            NDArray s = convert.apply(stored);
            NDArray w;
            if (dtype == DataType.FLOAT64) {
                try (NDArray one = Transformer.scalar(s.getManager(), offset, dtype)) {
                    w = s.add(one);
                }
            } else {
                w = convert.apply(weight);
            }
            w.setName(weight.getName());
            return new Norm(w, b, s, offset);
        }
    }

    /**
     * One decoder layer; biases (b*) and norms other than the family's are null.
     *
     * @param attnNorm     (d) norm on the attention input (null in OLMo 2)
     * @param wq           (heads * headDim, d)
     * @param wk           (kvHeads * headDim, d)
     * @param wv           (kvHeads * headDim, d)
     * @param wo           (d, heads * headDim)
     * @param qNorm        QK-norm on queries: (headDim) per head or (heads * headDim) over the projection
     * @param kNorm        QK-norm on keys
     * @param attnPostNorm (d) norm on the attention output (OLMo 2, Gemma 3)
     * @param mlpNorm      (d) norm on the MLP input (Llama's post_attention_layernorm)
     * @param gate         (intermediate, d), null for a plain MLP
     * @param up           (intermediate, d): up_proj, or GPT-2's c_fc
     * @param down         (d, intermediate)
     * @param mlpPostNorm  (d) norm on the MLP output (OLMo 2, Gemma 3)
     */
    public record Layer(Norm attnNorm, NDArray wq, NDArray bq, NDArray wk, NDArray bk, NDArray wv, NDArray bv,
                        NDArray wo, NDArray bo, Norm qNorm, Norm kNorm, Norm attnPostNorm, Norm mlpNorm,
                        NDArray gate, NDArray up, NDArray bUp, NDArray down, NDArray bDown, Norm mlpPostNorm) {

        List<NDArray> all() {
            List<NDArray> out = new ArrayList<>();
            for (Norm n : new Norm[] {attnNorm, qNorm, kNorm, attnPostNorm, mlpNorm, mlpPostNorm}) {
                if (n != null) {
                    out.add(n.weight());
                    out.add(n.bias());
                }
            }
            out.addAll(java.util.Arrays.asList(wq, bq, wk, bk, wv, bv, wo, bo, gate, up, bUp, down, bDown));
            out.removeIf(Objects::isNull);
            return out;
        }

        /** This layer with the weight matrices of {@code block} (not the norms and biases) mapped by {@code f}. */
        Layer withMatrices(Block block, Function<NDArray, NDArray> f) {
            Function<NDArray, NDArray> a = x -> x == null || block == Block.MLP ? x : f.apply(x);
            Function<NDArray, NDArray> g = x -> x == null || block == Block.ATTENTION ? x : f.apply(x);
            return new Layer(attnNorm, a.apply(wq), bq, a.apply(wk), bk, a.apply(wv), bv, a.apply(wo), bo, qNorm, kNorm,
                    attnPostNorm, mlpNorm, g.apply(gate), g.apply(up), bUp, g.apply(down), bDown, mlpPostNorm);
        }

        Layer to(Function<NDArray, NDArray> f, DataType dtype) {
            Function<NDArray, NDArray> g = a -> a == null ? null : f.apply(a);
            Function<Norm, Norm> n = x -> x == null ? null : x.to(f, dtype);
            return new Layer(n.apply(attnNorm), g.apply(wq), g.apply(bq), g.apply(wk), g.apply(bk), g.apply(wv),
                    g.apply(bv), g.apply(wo), g.apply(bo), n.apply(qNorm), n.apply(kNorm), n.apply(attnPostNorm),
                    n.apply(mlpNorm), g.apply(gate), g.apply(up), g.apply(bUp), g.apply(down), g.apply(bDown),
                    n.apply(mlpPostNorm));
        }
    }

    /** The dtype of the computation: that of the norms, and of every array not kept compactly. */
    public DataType dataType() {
        return finalNorm.weight().getDataType();
    }

    /** Whether {@code a} is kept compactly: in another dtype than the computation's, widened where it is used. */
    public boolean isCompact(NDArray a) {
        return a.getDataType() != dataType();
    }

    /** The matrices of a layer that {@link #layer} widens: those of attention, of the MLP, or all. */
    public enum Block { ATTENTION, MLP, BOTH }

    /**
     * Decoder layer {@code l} in {@link #dataType()}: as held, or with the compact matrices of {@code block} widened
     * into {@code m} (close it once they have been used; arrays computed from a widened matrix, the matrix first,
     * belong to it too). The other block's compact matrices are left as they are, unusable in a product.
     */
    public Layer layer(int l, NDManager m, Block block) {
        return layers.get(l).withMatrices(block, a -> isCompact(a) ? Compact.widen(a, m, dataType()) : a);
    }

    /** The token embeddings of {@code ids} (batch, t) int64: (batch, t, d), in ids' manager when widened. */
    public NDArray embedding(NDArray ids) {
        NDArray x = embed.get(new NDIndex("{}", ids));
        if (!isCompact(embed)) {
            return x;
        }
        NDArray wide = Compact.widen(x, ids.getManager(), dataType());
        x.close();
        return wide;
    }

    /**
     * {@code op} of a (rows, d) matrix (embed or lmHead), whose results over rows lie along the last axis: applied to
     * the matrix itself, or, when it is compact, to blocks of about {@code blockBytes} of widened rows (a multiple of
     * {@link #BLOCK_ALIGN}), the results concatenated (each block's widened rows are freed before the next is made).
     * Owned by {@code m}.
     */
    public NDArray byRows(NDArray matrix, NDManager m, long blockBytes, Function<NDArray, NDArray> op) {
        if (!isCompact(matrix)) {
            return op.apply(matrix);
        }
        long rows = Compact.shape(matrix).get(0);
        long rowBytes = Compact.shape(matrix).get(1) * dataType().getNumOfBytes();
        long block = Math.max(1, blockBytes / rowBytes / BLOCK_ALIGN) * BLOCK_ALIGN;
        NDList parts = new NDList();
        for (long from = 0; from < rows; from += block) {
            try (NDManager b = m.newSubManager()) {
                NDArray part = op.apply(Compact.rows(matrix, from, Math.min(rows, from + block), b, dataType()));
                part.attach(m);
                parts.add(part);
            }
        }
        return parts.size() == 1 ? parts.singletonOrThrow() : NDArrays.concat(parts, -1);
    }

    /**
     * Rows of a block of {@link #byRows} come in multiples of this: a block then starts where a tile of the product's
     * kernel starts in the whole product, and gives its numbers bit for bit (blocks of 7 rows or 5461 did not, here).
     */
    static final long BLOCK_ALIGN = 1024;

    /** Bytes of every distinct array. */
    public long bytes() {
        return all().stream().mapToLong(Weights::bytes).sum();
    }

    /** Bytes of the arrays kept compactly. */
    public long compactBytes() {
        return all().stream().filter(this::isCompact).mapToLong(Weights::bytes).sum();
    }

    private static long bytes(NDArray a) {
        return a.getShape().size() * a.getDataType().getNumOfBytes();
    }

    /** Every distinct array (lm_head once even when tied). */
    public List<NDArray> all() {
        List<NDArray> out = new ArrayList<>();
        out.add(embed);
        if (positions != null) {
            out.add(positions);
        }
        layers.forEach(l -> out.addAll(l.all()));
        out.add(finalNorm.weight());
        if (finalNorm.bias() != null) {
            out.add(finalNorm.bias());
        }
        if (lmHead != embed) {
            out.add(lmHead);
        }
        return out;
    }

    /**
     * Reads the family's HF tensor names, checking each shape against the config: in {@code dtype}, except that with
     * {@link WeightStorage#COMPACT} and a float32 {@code dtype} the weight matrices stored in bfloat16 or float16 stay
     * so.
     */
    public static Weights load(ModelConfig c, SafetensorsReader r, NDManager m, DataType dtype,
                               WeightStorage storage) {
        Loader ld = new Loader(c, r, m, dtype, storage == WeightStorage.COMPACT && dtype == DataType.FLOAT32);
        return switch (c.family().naming()) {
            case GPT2 -> ld.gpt2();
            case LLAMA, PHI3 -> ld.llamaLike();
        };
    }

    /** The loading of one checkpoint: the HF names of every family. */
    private record Loader(ModelConfig c, SafetensorsReader r, NDManager m, DataType dtype, boolean compact) {

        Weights llamaLike() {
            Family f = c.family();
            long d = c.hiddenSize();
            long q = (long) c.numHeads() * c.headDim();
            long kv = (long) c.numKvHeads() * c.headDim();
            long ff = c.intermediateSize();
            NDArray embed = matrix("model.embed_tokens.weight", c.vocabSize(), d);
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                String p = "model.layers." + i + ".";
                NDArray wq;
                NDArray wk;
                NDArray wv;
                NDArray gate;
                NDArray up;
                if (f.naming() == Family.Naming.PHI3) {
                    NDArray qkv = matrix(p + "self_attn.qkv_proj.weight", q + 2 * kv, d);
                    wq = rows(qkv, 0, q, p + "self_attn.qkv_proj.weight[q]");
                    wk = rows(qkv, q, q + kv, p + "self_attn.qkv_proj.weight[k]");
                    wv = rows(qkv, q + kv, q + 2 * kv, p + "self_attn.qkv_proj.weight[v]");
                    NDArray gu = matrix(p + "mlp.gate_up_proj.weight", 2 * ff, d);
                    gate = rows(gu, 0, ff, p + "mlp.gate_up_proj.weight[gate]");
                    up = rows(gu, ff, 2 * ff, p + "mlp.gate_up_proj.weight[up]");
                    qkv.close();
                    gu.close();
                } else {
                    wq = matrix(p + "self_attn.q_proj.weight", q, d);
                    wk = matrix(p + "self_attn.k_proj.weight", kv, d);
                    wv = matrix(p + "self_attn.v_proj.weight", kv, d);
                    gate = matrix(p + "mlp.gate_proj.weight", ff, d);
                    up = matrix(p + "mlp.up_proj.weight", ff, d);
                }
                NDArray bq = f.qkvBias() ? tensor(p + "self_attn.q_proj.bias", q) : null;
                NDArray bk = f.qkvBias() ? tensor(p + "self_attn.k_proj.bias", kv) : null;
                NDArray bv = f.qkvBias() ? tensor(p + "self_attn.v_proj.bias", kv) : null;
                Norm qNorm = null;
                Norm kNorm = null;
                if (f.qkNorm() != Family.QkNorm.NONE) {
                    boolean perHead = f.qkNorm() == Family.QkNorm.PER_HEAD;
                    qNorm = norm(p + "self_attn.q_norm", perHead ? c.headDim() : q);
                    kNorm = norm(p + "self_attn.k_norm", perHead ? c.headDim() : kv);
                }
                Norm attnNorm = f.layout().preNorms() ? norm(p + "input_layernorm", d) : null;
                Norm attnPost = null;
                Norm mlpNorm = null;
                Norm mlpPost = null;
                switch (f.layout()) {
                    case PRE -> mlpNorm = norm(p + "post_attention_layernorm", d);
                    case POST -> {
                        attnPost = norm(p + "post_attention_layernorm", d);
                        mlpPost = norm(p + "post_feedforward_layernorm", d);
                    }
                    case SANDWICH -> {
                        attnPost = norm(p + "post_attention_layernorm", d);
                        mlpNorm = norm(p + "pre_feedforward_layernorm", d);
                        mlpPost = norm(p + "post_feedforward_layernorm", d);
                    }
                }
                layers.add(new Layer(attnNorm, wq, bq, wk, bk, wv, bv, matrix(p + "self_attn.o_proj.weight", d, q),
                        null, qNorm, kNorm, attnPost, mlpNorm, gate, up, null,
                        matrix(p + "mlp.down_proj.weight", d, ff), null, mlpPost));
            }
            Norm finalNorm = norm("model.norm", d);
            return new Weights(embed, null, List.copyOf(layers), finalNorm, head(embed, "model.embed_tokens.weight"));
        }

        Weights gpt2() {
            long d = c.hiddenSize();
            long ff = c.intermediateSize();
            // checkpoints saved from GPT2LMHeadModel prefix "transformer."; the original gpt2 files do not
            String pre = r.contains("transformer.wte.weight") ? "transformer." : "";
            NDArray embed = matrix(pre + "wte.weight", c.vocabSize(), d);
            NDArray pos = tensor(pre + "wpe.weight", c.maxPositions(), d);
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                String p = pre + "h." + i + ".";
                // Conv1D stores (in, out): transpose to (out, in)
                NDArray qkv = conv1d(p + "attn.c_attn.weight", d, 3 * d);
                NDArray qkvBias = tensor(p + "attn.c_attn.bias", 3 * d);
                layers.add(new Layer(norm(p + "ln_1", d),
                        rows(qkv, 0, d, p + "attn.c_attn.weight[q]"), rows(qkvBias, 0, d, p + "attn.c_attn.bias[q]"),
                        rows(qkv, d, 2 * d, p + "attn.c_attn.weight[k]"),
                        rows(qkvBias, d, 2 * d, p + "attn.c_attn.bias[k]"),
                        rows(qkv, 2 * d, 3 * d, p + "attn.c_attn.weight[v]"),
                        rows(qkvBias, 2 * d, 3 * d, p + "attn.c_attn.bias[v]"),
                        conv1d(p + "attn.c_proj.weight", d, d), tensor(p + "attn.c_proj.bias", d),
                        null, null, null, norm(p + "ln_2", d),
                        null, conv1d(p + "mlp.c_fc.weight", d, ff), tensor(p + "mlp.c_fc.bias", ff),
                        conv1d(p + "mlp.c_proj.weight", ff, d), tensor(p + "mlp.c_proj.bias", d), null));
            }
            Norm finalNorm = norm(pre + "ln_f", d);
            return new Weights(embed, pos, List.copyOf(layers), finalNorm, head(embed, pre + "wte.weight"));
        }

        NDArray head(NDArray embed, String embedName) {
            if (c.tieWordEmbeddings() || !r.contains("lm_head.weight")) {
                if (!c.tieWordEmbeddings()) {
                    throw new ModelLoadException(r.info(embedName).file(),
                            "tensor 'lm_head.weight' is missing and config.json does not set tie_word_embeddings");
                }
                return embed;
            }
            return matrix("lm_head.weight", c.vocabSize(), c.hiddenSize());
        }

        /** A norm's weight (family offset added, the stored w kept) and, for LayerNorm, its bias. */
        Norm norm(String prefix, long n) {
            NDArray w = tensor(prefix + ".weight", n);
            NDArray b = c.family().norm() == Family.NormKind.LAYER ? tensor(prefix + ".bias", n) : null;
            double offset = c.family().normOffset();
            if (offset == 0) {
                return new Norm(w, b);
            }
            NDArray shifted;
            try (NDArray one = Transformer.scalar(m, offset, dtype)) {
                shifted = w.add(one);
            }
            shifted.setName(w.getName());
            return new Norm(shifted, b, w, offset);
        }

        /** Rows [from, to) of a fused (out, in) matrix or a fused bias, as a tensor of its own. */
        NDArray rows(NDArray fused, long from, long to, String name) {
            NDArray part = fused.get(new NDIndex("{}:{}", from, to)).duplicate();
            part.setName(name);
            return part;
        }

        /**
         * A Conv1D weight (in, out) as (out, in), copied in row-major order (flattening the transposed view copies it
         * so): what {@link Compact} reads, and the same layout, hence the same kernels, for a float32 load.
         */
        NDArray conv1d(String name, long in, long out) {
            NDArray t;
            try (NDArray a = matrix(name, in, out); NDArray view = a.swapAxes(0, 1); NDArray flat = view.flatten()) {
                t = flat.reshape(view.getShape());
            }
            t.setName(name + "^T");
            return t;
        }

        /** A weight matrix: compact when the load keeps matrices compact and its checkpoint stores it so. */
        NDArray matrix(String name, long... shape) {
            return compact && Compact.keeps(r.info(name).dtype()) ? Compact.read(r, name, shape, m)
                    : tensor(name, shape);
        }

        NDArray tensor(String name, long... shape) {
            FloatBuffer data = r.readFloat32(name, shape);
            NDArray a = m.create(data, new Shape(shape));
            a.setName(name);
            if (dtype == DataType.FLOAT32) {
                return a;
            }
            NDArray out = a.toType(dtype, false);
            out.setName(a.getName());
            a.close();
            return out;
        }
    }

    /**
     * A copy of every tensor in another dtype, owned by {@code m} (e.g. float64 for exact Jacobians). Compact arrays
     * are not copied but shared: the copy widens them to its dtype where they are used, as this one does.
     */
    public Weights to(NDManager m, DataType dtype) {
        Function<NDArray, NDArray> cv = a -> {
            if (isCompact(a)) {
                return a;
            }
            NDArray o = a.toType(dtype, true);
            o.attach(m);
            return o;
        };
        List<Layer> ls = layers.stream().map(l -> l.to(cv, dtype)).toList();
        NDArray e = cv.apply(embed);
        return new Weights(e, positions == null ? null : cv.apply(positions), ls, finalNorm.to(cv, dtype),
                lmHead == embed ? e : cv.apply(lmHead));
    }
}
