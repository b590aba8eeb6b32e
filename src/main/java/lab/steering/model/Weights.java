package lab.steering.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.FloatBuffer;
import java.util.List;

/**
 * The tensors of a Llama-family decoder, in Hugging Face's layout ({@code [out, in]} for projections),
 * owned by one NDManager. Weight key strings appear only in {@link #load}.
 *
 * @param embed     (vocab, d) token embeddings
 * @param layers    one entry per decoder layer
 * @param finalNorm (d) RMSNorm weight before lm_head
 * @param lmHead    (vocab, d) unembedding; the same array as {@code embed} when tied
 */
public record Weights(NDArray embed, List<Layer> layers, NDArray finalNorm, NDArray lmHead) {

    /**
     * One decoder layer.
     *
     * @param attnNorm (d) input_layernorm
     * @param wq       (heads * headDim, d)
     * @param wk       (kvHeads * headDim, d)
     * @param wv       (kvHeads * headDim, d)
     * @param wo       (d, heads * headDim)
     * @param mlpNorm  (d) post_attention_layernorm
     * @param gate     (intermediate, d)
     * @param up       (intermediate, d)
     * @param down     (d, intermediate)
     */
    public record Layer(NDArray attnNorm, NDArray wq, NDArray wk, NDArray wv, NDArray wo,
                        NDArray mlpNorm, NDArray gate, NDArray up, NDArray down) {
        List<NDArray> all() {
            return List.of(attnNorm, wq, wk, wv, wo, mlpNorm, gate, up, down);
        }
    }

    /** Every distinct array (lm_head once even when tied). */
    public List<NDArray> all() {
        java.util.ArrayList<NDArray> out = new java.util.ArrayList<>();
        out.add(embed);
        layers.forEach(l -> out.addAll(l.all()));
        out.add(finalNorm);
        if (lmHead != embed) {
            out.add(lmHead);
        }
        return out;
    }

    /** Reads the HF Llama tensor names, checking each shape against the config. */
    public static Weights load(ModelConfig c, SafetensorsReader r, NDManager m, DataType dtype) {
        long d = c.hiddenSize();
        long q = (long) c.numHeads() * c.headDim();
        long kv = (long) c.numKvHeads() * c.headDim();
        long ff = c.intermediateSize();
        long vocab = c.vocabSize();
        NDArray embed = tensor(r, m, dtype, "model.embed_tokens.weight", vocab, d);
        List<Layer> layers = new java.util.ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            layers.add(new Layer(
                    tensor(r, m, dtype, p + "input_layernorm.weight", d),
                    tensor(r, m, dtype, p + "self_attn.q_proj.weight", q, d),
                    tensor(r, m, dtype, p + "self_attn.k_proj.weight", kv, d),
                    tensor(r, m, dtype, p + "self_attn.v_proj.weight", kv, d),
                    tensor(r, m, dtype, p + "self_attn.o_proj.weight", d, q),
                    tensor(r, m, dtype, p + "post_attention_layernorm.weight", d),
                    tensor(r, m, dtype, p + "mlp.gate_proj.weight", ff, d),
                    tensor(r, m, dtype, p + "mlp.up_proj.weight", ff, d),
                    tensor(r, m, dtype, p + "mlp.down_proj.weight", d, ff)));
        }
        NDArray norm = tensor(r, m, dtype, "model.norm.weight", d);
        NDArray head;
        if (c.tieWordEmbeddings() || !r.contains("lm_head.weight")) {
            if (!c.tieWordEmbeddings()) {
                throw new ModelLoadException(r.info("model.embed_tokens.weight").file(),
                        "tensor 'lm_head.weight' is missing and config.json does not set tie_word_embeddings");
            }
            head = embed;
        } else {
            head = tensor(r, m, dtype, "lm_head.weight", vocab, d);
        }
        return new Weights(embed, List.copyOf(layers), norm, head);
    }

    private static NDArray tensor(SafetensorsReader r, NDManager m, DataType dtype, String name, long... shape) {
        FloatBuffer data = r.readFloat32(name, shape);
        NDArray a = m.create(data, new Shape(shape));
        a.setName(name);
        return dtype == DataType.FLOAT32 ? a : convert(a, dtype);
    }

    private static NDArray convert(NDArray a, DataType dtype) {
        NDArray out = a.toType(dtype, false);
        out.setName(a.getName());
        a.close();
        return out;
    }

    /** A copy of every tensor in another dtype, owned by {@code m} (e.g. float64 for exact Jacobians). */
    public Weights to(NDManager m, DataType dtype) {
        java.util.function.Function<NDArray, NDArray> cv = a -> {
            NDArray o = a.toType(dtype, true);
            o.attach(m);
            return o;
        };
        List<Layer> ls = layers.stream().map(l -> new Layer(cv.apply(l.attnNorm), cv.apply(l.wq), cv.apply(l.wk),
                cv.apply(l.wv), cv.apply(l.wo), cv.apply(l.mlpNorm), cv.apply(l.gate), cv.apply(l.up),
                cv.apply(l.down))).toList();
        NDArray e = cv.apply(embed);
        return new Weights(e, ls, cv.apply(finalNorm), lmHead == embed ? e : cv.apply(lmHead));
    }
}
