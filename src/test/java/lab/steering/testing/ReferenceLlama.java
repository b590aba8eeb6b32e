package lab.steering.testing;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Test oracle: an independent, plain-Java, float64 forward pass of Hugging Face's LlamaForCausalLM
 * (transformers' modeling_llama.py semantics), deliberately slow and simple. No DJL, no product classes.
 *
 * <p>Covered: RMSNorm, RoPE in HF's rotate_half layout (dimension i pairs with i + headDim/2) with optional
 * "llama3" frequency scaling, grouped-query attention, explicit or derived head_dim, SwiGLU MLP, tied or untied
 * lm_head. Not covered (rejected on load): attention/MLP biases, activations other than silu, other RoPE types.
 *
 * <p>Everything is double; HF runs float32 (and casts RMSNorm, softmax and RoPE tables to float32 even in
 * lower-precision models), so against a float32 HF run expect agreement to about 1e-6..1e-5 relative.
 * Weight matrices are kept in nn.Linear's layout [out][in]: y[o] = sum_i W[o][i] x[i].
 */
public final class ReferenceLlama {

    /** One decoder layer's weights. */
    private record Layer(
            double[] inputNorm,    // [hidden]                    input_layernorm.weight
            double[][] q,          // [heads * headDim][hidden]   self_attn.q_proj.weight
            double[][] k,          // [kvHeads * headDim][hidden] self_attn.k_proj.weight
            double[][] v,          // [kvHeads * headDim][hidden] self_attn.v_proj.weight
            double[][] o,          // [hidden][heads * headDim]   self_attn.o_proj.weight
            double[] postNorm,     // [hidden]                    post_attention_layernorm.weight
            double[][] gate,       // [intermediate][hidden]      mlp.gate_proj.weight
            double[][] up,         // [intermediate][hidden]      mlp.up_proj.weight
            double[][] down) {     // [hidden][intermediate]      mlp.down_proj.weight
    }

    // ---- config (config.json) ----
    private final int hiddenSize;          // hidden_size
    private final int intermediateSize;    // intermediate_size
    private final int numLayers;           // num_hidden_layers
    private final int numHeads;            // num_attention_heads
    private final int numKvHeads;          // num_key_value_heads (default: num_attention_heads)
    private final int headDim;             // head_dim (default: hidden_size / num_attention_heads)
    private final int vocabSize;           // vocab_size
    private final int maxPositions;        // max_position_embeddings (informational; not enforced)
    private final double rmsNormEps;       // rms_norm_eps (HF LlamaConfig default 1e-6)
    private final double ropeTheta;        // rope_theta, or rope_parameters.rope_theta (transformers 5)
    private final String ropeType;         // "default" or "llama3"
    private final boolean tiedEmbeddings;  // tie_word_embeddings
    private final double[] invFreq;        // [headDim / 2] RoPE inverse frequencies, after any llama3 scaling

    // ---- weights ----
    private final double[][] embed;        // [vocab][hidden]  model.embed_tokens.weight
    private final Layer[] layers;          // [numLayers]
    private final double[] finalNorm;      // [hidden]         model.norm.weight
    private final double[][] lmHead;       // [vocab][hidden]  lm_head.weight, or embed when tied

    private ReferenceLlama(JsonNode cfg, Map<String, SafetensorsTestReader.Tensor> w) {
        String act = cfg.path("hidden_act").asText("silu");
        if (!act.equals("silu") || cfg.path("attention_bias").asBoolean(false) || cfg.path("mlp_bias").asBoolean(false)) {
            throw new IllegalArgumentException("unsupported: hidden_act=" + act + ", attention_bias/mlp_bias");
        }
        hiddenSize = cfg.get("hidden_size").asInt();
        intermediateSize = cfg.get("intermediate_size").asInt();
        numLayers = cfg.get("num_hidden_layers").asInt();
        numHeads = cfg.get("num_attention_heads").asInt();
        numKvHeads = present(cfg, "num_key_value_heads") ? cfg.get("num_key_value_heads").asInt() : numHeads;
        headDim = present(cfg, "head_dim") ? cfg.get("head_dim").asInt() : hiddenSize / numHeads;
        vocabSize = cfg.get("vocab_size").asInt();
        maxPositions = cfg.path("max_position_embeddings").asInt(0);
        rmsNormEps = present(cfg, "rms_norm_eps") ? cfg.get("rms_norm_eps").asDouble() : 1e-6;
        tiedEmbeddings = cfg.path("tie_word_embeddings").asBoolean(false);
        if (numHeads % numKvHeads != 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("heads " + numHeads + " / kv heads " + numKvHeads + " / head_dim " + headDim);
        }

        // RoPE: transformers <= 4.x writes rope_theta + rope_scaling; transformers 5 writes rope_parameters
        // {rope_type, rope_theta, factor, ...}. Accept both; an explicit rope_scaling wins.
        JsonNode rope = present(cfg, "rope_scaling") ? cfg.get("rope_scaling") : cfg.path("rope_parameters");
        ropeTheta = present(cfg, "rope_theta") ? cfg.get("rope_theta").asDouble()
                : rope.path("rope_theta").asDouble(10000.0);
        String type = rope.hasNonNull("rope_type") ? rope.get("rope_type").asText() : rope.path("type").asText("default");
        ropeType = type;
        invFreq = new double[headDim / 2];
        for (int i = 0; i < invFreq.length; i++) {
            invFreq[i] = 1.0 / Math.pow(ropeTheta, (2.0 * i) / headDim);
        }
        if (type.equals("llama3")) {
            applyLlama3Scaling(invFreq, rope.get("factor").asDouble(), rope.get("low_freq_factor").asDouble(),
                    rope.get("high_freq_factor").asDouble(),
                    present(rope, "original_max_position_embeddings")
                            ? rope.get("original_max_position_embeddings").asDouble() : maxPositions);
        } else if (!type.equals("default")) {
            throw new IllegalArgumentException("unsupported rope type " + type);
        }

        int qDim = numHeads * headDim;
        int kvDim = numKvHeads * headDim;
        embed = matrix(w, "model.embed_tokens.weight", vocabSize, hiddenSize);
        layers = new Layer[numLayers];
        for (int l = 0; l < numLayers; l++) {
            String p = "model.layers." + l + ".";
            layers[l] = new Layer(
                    vector(w, p + "input_layernorm.weight", hiddenSize),
                    matrix(w, p + "self_attn.q_proj.weight", qDim, hiddenSize),
                    matrix(w, p + "self_attn.k_proj.weight", kvDim, hiddenSize),
                    matrix(w, p + "self_attn.v_proj.weight", kvDim, hiddenSize),
                    matrix(w, p + "self_attn.o_proj.weight", hiddenSize, qDim),
                    vector(w, p + "post_attention_layernorm.weight", hiddenSize),
                    matrix(w, p + "mlp.gate_proj.weight", intermediateSize, hiddenSize),
                    matrix(w, p + "mlp.up_proj.weight", intermediateSize, hiddenSize),
                    matrix(w, p + "mlp.down_proj.weight", hiddenSize, intermediateSize));
        }
        finalNorm = vector(w, "model.norm.weight", hiddenSize);
        lmHead = tiedEmbeddings ? embed : matrix(w, "lm_head.weight", vocabSize, hiddenSize);
    }

    /** Reads config.json and model.safetensors (or the sharded model.safetensors.index.json) from a folder. */
    public static ReferenceLlama load(Path folder) throws IOException {
        JsonNode cfg = new ObjectMapper().readTree(folder.resolve("config.json").toFile());
        return new ReferenceLlama(cfg, SafetensorsTestReader.readFolder(folder));
    }

    /**
     * HF's _compute_llama3_parameters: with wavelen = 2*pi/f, lowWl = origMax/lowFreqFactor and
     * highWl = origMax/highFreqFactor: wavelen < highWl keeps f; wavelen > lowWl gives f/factor; otherwise
     * (both bounds inclusive) s = (origMax/wavelen - lowFreqFactor)/(highFreqFactor - lowFreqFactor) and
     * f' = (1-s) f/factor + s f. Applied to the frequencies whatever the sequence length (not dynamic).
     */
    static void applyLlama3Scaling(double[] invFreq, double factor, double lowFreqFactor, double highFreqFactor,
            double originalMax) {
        double lowFreqWavelen = originalMax / lowFreqFactor;
        double highFreqWavelen = originalMax / highFreqFactor;
        for (int i = 0; i < invFreq.length; i++) {
            double f = invFreq[i];
            double wavelen = 2 * Math.PI / f;
            if (wavelen < highFreqWavelen) {
                continue;
            } else if (wavelen > lowFreqWavelen) {
                invFreq[i] = f / factor;
            } else {
                double s = (originalMax / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                invFreq[i] = (1 - s) * f / factor + s * f;
            }
        }
    }

    // ------------------------------------------------------------------ forward

    /** Logits at every position, [T][vocab]: full causal attention over ids, positions 0..T-1, no cache. */
    public double[][] logits(int[] ids) {
        double[][] y = finalHidden(ids);
        double[][] out = new double[ids.length][];
        for (int t = 0; t < ids.length; t++) {
            out[t] = matVec(lmHead, y[t]);
        }
        return out;
    }

    /** Logits at the last position, [vocab]. */
    public double[] lastLogits(int[] ids) {
        double[][] y = finalHidden(ids);
        return matVec(lmHead, y[ids.length - 1]);
    }

    /** Greedy decoding: argmax (first index on ties, like torch.argmax), re-running the full sequence each step. */
    public int[] greedy(int[] promptIds, int newTokens) {
        int[] seq = java.util.Arrays.copyOf(promptIds, promptIds.length + newTokens);
        for (int n = 0; n < newTokens; n++) {
            seq[promptIds.length + n] = argmax(lastLogits(java.util.Arrays.copyOf(seq, promptIds.length + n)));
        }
        return java.util.Arrays.copyOfRange(seq, promptIds.length, seq.length);
    }

    /** Hidden states after the final norm (weight included), before lm_head: [T][hidden]. */
    public double[][] finalHidden(int[] ids) {
        int seqLen = ids.length;
        if (seqLen == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        double[][] h = new double[seqLen][];   // [T][hidden] residual stream
        for (int t = 0; t < seqLen; t++) {
            if (ids[t] < 0 || ids[t] >= vocabSize) {
                throw new IllegalArgumentException("token id " + ids[t] + " outside vocab " + vocabSize);
            }
            h[t] = embed[ids[t]].clone();
        }
        for (Layer layer : layers) {
            double[][] attnOut = attention(layer, h);
            for (int t = 0; t < seqLen; t++) {
                add(h[t], attnOut[t]);
            }
            for (int t = 0; t < seqLen; t++) {
                add(h[t], mlp(layer, rmsNorm(h[t], layer.postNorm)));
            }
        }
        double[][] y = new double[seqLen][];
        for (int t = 0; t < seqLen; t++) {
            y[t] = rmsNorm(h[t], finalNorm);
        }
        return y;
    }

    /** Self-attention block output (after o_proj) for all positions; input h is the raw residual [T][hidden]. */
    private double[][] attention(Layer layer, double[][] h) {
        int seqLen = h.length;
        int group = numHeads / numKvHeads;  // query heads per kv head; head hd reads kv head hd / group
        double[][] q = new double[seqLen][];  // [T][heads * headDim]
        double[][] k = new double[seqLen][];  // [T][kvHeads * headDim]
        double[][] v = new double[seqLen][];  // [T][kvHeads * headDim]
        for (int t = 0; t < seqLen; t++) {
            double[] x = rmsNorm(h[t], layer.inputNorm);
            q[t] = matVec(layer.q, x);
            k[t] = matVec(layer.k, x);
            v[t] = matVec(layer.v, x);
            for (int hd = 0; hd < numHeads; hd++) {
                rope(q[t], hd * headDim, t);
            }
            for (int hd = 0; hd < numKvHeads; hd++) {
                rope(k[t], hd * headDim, t);
            }
        }
        double scale = 1.0 / Math.sqrt(headDim);
        double[][] out = new double[seqLen][];
        for (int t = 0; t < seqLen; t++) {
            double[] heads = new double[numHeads * headDim];  // [heads * headDim], concatenated head outputs
            for (int hd = 0; hd < numHeads; hd++) {
                int qOff = hd * headDim;
                int kvOff = (hd / group) * headDim;
                double[] scores = new double[t + 1];  // causal: positions 0..t
                double max = Double.NEGATIVE_INFINITY;
                for (int s = 0; s <= t; s++) {
                    double dot = 0;
                    for (int i = 0; i < headDim; i++) {
                        dot += q[t][qOff + i] * k[s][kvOff + i];
                    }
                    scores[s] = dot * scale;
                    max = Math.max(max, scores[s]);
                }
                double sum = 0;
                for (int s = 0; s <= t; s++) {
                    scores[s] = Math.exp(scores[s] - max);
                    sum += scores[s];
                }
                for (int s = 0; s <= t; s++) {
                    double a = scores[s] / sum;
                    for (int i = 0; i < headDim; i++) {
                        heads[qOff + i] += a * v[s][kvOff + i];
                    }
                }
            }
            out[t] = matVec(layer.o, heads);
        }
        return out;
    }

    /**
     * RoPE on one head, in place, HF rotate_half layout: for i < headDim/2, with angle = pos * invFreq[i],
     * (x[i], x[i+half]) -> (x[i] cos - x[i+half] sin, x[i+half] cos + x[i] sin).
     */
    private void rope(double[] x, int off, int pos) {
        int half = headDim / 2;
        for (int i = 0; i < half; i++) {
            double angle = pos * invFreq[i];
            double cos = Math.cos(angle);
            double sin = Math.sin(angle);
            double a = x[off + i];
            double b = x[off + half + i];
            x[off + i] = a * cos - b * sin;
            x[off + half + i] = b * cos + a * sin;
        }
    }

    /** SwiGLU: down(silu(gate(x)) * up(x)). */
    private double[] mlp(Layer layer, double[] x) {
        double[] g = matVec(layer.gate, x);
        double[] u = matVec(layer.up, x);
        for (int i = 0; i < g.length; i++) {
            g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        }
        return matVec(layer.down, g);
    }

    /** x * 1/sqrt(mean(x^2) + eps) * w, all in double. */
    private double[] rmsNorm(double[] x, double[] w) {
        double ss = 0;
        for (double xi : x) {
            ss += xi * xi;
        }
        double r = 1.0 / Math.sqrt(ss / x.length + rmsNormEps);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = w[i] * (x[i] * r);
        }
        return y;
    }

    // ------------------------------------------------------------------ helpers

    private static double[] matVec(double[][] m, double[] x) {
        double[] y = new double[m.length];
        for (int o = 0; o < m.length; o++) {
            double[] row = m[o];
            double s = 0;
            for (int i = 0; i < x.length; i++) {
                s += row[i] * x[i];
            }
            y[o] = s;
        }
        return y;
    }

    private static void add(double[] acc, double[] x) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += x[i];
        }
    }

    static int argmax(double[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    private static boolean present(JsonNode node, String field) {
        return node.hasNonNull(field);
    }

    private static double[][] matrix(Map<String, SafetensorsTestReader.Tensor> w, String name, int rows, int cols) {
        SafetensorsTestReader.Tensor t = tensor(w, name, rows, cols);
        double[][] m = new double[rows][];
        for (int r = 0; r < rows; r++) {
            m[r] = java.util.Arrays.copyOfRange(t.data(), r * cols, (r + 1) * cols);
        }
        return m;
    }

    private static double[] vector(Map<String, SafetensorsTestReader.Tensor> w, String name, int n) {
        return tensor(w, name, n).data();
    }

    private static SafetensorsTestReader.Tensor tensor(Map<String, SafetensorsTestReader.Tensor> w, String name,
            int... shape) {
        SafetensorsTestReader.Tensor t = w.get(name);
        if (t == null) {
            throw new IllegalArgumentException("missing tensor " + name);
        }
        if (!java.util.Arrays.equals(t.shape(), java.util.Arrays.stream(shape).asLongStream().toArray())) {
            throw new IllegalArgumentException(name + ": shape " + java.util.Arrays.toString(t.shape())
                    + ", expected " + java.util.Arrays.toString(shape));
        }
        return t;
    }

    // ------------------------------------------------------------------ config accessors

    public int hiddenSize() {
        return hiddenSize;
    }

    public int intermediateSize() {
        return intermediateSize;
    }

    public int layers() {
        return numLayers;
    }

    public int heads() {
        return numHeads;
    }

    public int kvHeads() {
        return numKvHeads;
    }

    public int headDim() {
        return headDim;
    }

    public int vocabSize() {
        return vocabSize;
    }

    public int maxPositions() {
        return maxPositions;
    }

    public double rmsNormEps() {
        return rmsNormEps;
    }

    public double ropeTheta() {
        return ropeTheta;
    }

    /** "default" or "llama3". */
    public String ropeType() {
        return ropeType;
    }

    public boolean tiedEmbeddings() {
        return tiedEmbeddings;
    }

    /** RoPE inverse frequencies after any scaling, [headDim / 2] (a copy). */
    public double[] invFreq() {
        return invFreq.clone();
    }

    /** Input embedding row of a token (a copy), [hidden]. */
    public double[] embedding(int tokenId) {
        return embed[tokenId].clone();
    }
}
