package lab.steering.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * Test oracle for the families beyond Llama: an independent, plain-Java, float64 forward pass written from each
 * family's published definition (Hugging Face transformers' modeling files: Mistral, Qwen2, Qwen3, OLMo 2, Gemma 3
 * text, Phi-3, GPT-2), reading config.json field names and HF tensor names directly. No DJL, no product classes;
 * slow and simple. Llama itself has {@link ReferenceLlama}.
 *
 * <p>Per family (each decoder layer, h the residual stream):
 * <ul>
 *   <li>mistral / qwen2 / qwen3 / phi3 (pre-norm): {@code h += attn(rms1(h)); h += mlp(rms2(h))}</li>
 *   <li>olmo2 (post-norm): {@code h += rms1(attn(h)); h += rms2(mlp(h))}</li>
 *   <li>gemma3_text (sandwich): {@code h += postAttn(attn(in(h))); h += postFf(mlp(preFf(h)))}, RMSNorm by (1 + w)</li>
 *   <li>gpt2: LayerNorm with bias, {@code h += attn(ln1(h)); h += mlp(ln2(h))}</li>
 * </ul>
 * Attention: q = Wq x (+ bq for qwen2 and gpt2), QK-norm (qwen3, gemma3: per head; olmo2: whole projection) before
 * RoPE (rotate_half layout; none in gpt2), scores scaled by 1/sqrt(head_dim) (gemma3: query_pre_attn_scalar^-1/2),
 * causal, and with a sliding window w a key j is seen by query i only when i - j < w (Mistral and Phi-3: every
 * layer; Gemma 3: the layers that layer_types calls sliding_attention, or without layer_types every layer except
 * each sliding_window_pattern-th; global layers use rope_theta with its linear scaling, local ones
 * rope_local_base_freq unscaled, or in transformers 5's config format rope_parameters' full_attention and
 * sliding_attention entries). MLP: gated {@code down(act(gate x) * up x)}
 * (SiLU; Gemma 3 GELU-tanh; Phi-3 splits gate_up_proj into gate then up), GPT-2 {@code c_proj(gelu_new(c_fc x))}
 * with Conv1D weights stored (in, out) and biases.
 */
public final class ReferenceDecoder {

    private final String type;
    private final int d;
    private final int ff;
    private final int layers;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final int vocab;
    private final double eps;
    private final double scale;
    private final int window;          // 0: none
    private final boolean[] local;     // per layer: sliding window and local RoPE
    private final double[] globalFreq;
    private final double[] localFreq;
    private final Map<String, SafetensorsTestReader.Tensor> w;
    private final boolean tied;

    private ReferenceDecoder(JsonNode cfg, Map<String, SafetensorsTestReader.Tensor> weights) {
        this.w = weights;
        type = cfg.get("model_type").asText();
        boolean gpt2 = type.equals("gpt2");
        d = cfg.get(gpt2 ? "n_embd" : "hidden_size").asInt();
        layers = cfg.get(gpt2 ? "n_layer" : "num_hidden_layers").asInt();
        heads = cfg.get(gpt2 ? "n_head" : "num_attention_heads").asInt();
        kvHeads = cfg.hasNonNull("num_key_value_heads") ? cfg.get("num_key_value_heads").asInt() : heads;
        headDim = cfg.hasNonNull("head_dim") ? cfg.get("head_dim").asInt() : d / heads;
        ff = gpt2 ? (cfg.hasNonNull("n_inner") ? cfg.get("n_inner").asInt() : 4 * d) : cfg.get("intermediate_size").asInt();
        vocab = cfg.get("vocab_size").asInt();
        eps = gpt2 ? cfg.path("layer_norm_epsilon").asDouble(1e-5) : cfg.path("rms_norm_eps").asDouble(1e-6);
        scale = type.equals("gemma3_text") ? 1 / Math.sqrt(cfg.get("query_pre_attn_scalar").asDouble())
                : 1 / Math.sqrt(headDim);
        window = cfg.hasNonNull("sliding_window") && !type.startsWith("qwen") ? cfg.get("sliding_window").asInt() : 0;
        tied = cfg.path("tie_word_embeddings").asBoolean(gpt2 || type.equals("gemma3_text"));
        local = new boolean[layers];
        JsonNode types = cfg.get("layer_types");
        int pattern = type.equals("gemma3_text") ? cfg.path("sliding_window_pattern").asInt(6) : 0;
        for (int l = 0; l < layers; l++) {
            local[l] = window > 0 && (types != null && !types.isNull()
                    ? types.get(l).asText().equals("sliding_attention")
                    : pattern == 0 || (l + 1) % pattern != 0);
        }
        // transformers 5 writes rope_parameters {rope_type, rope_theta, factor} (Gemma 3: one per layer type);
        // older configs rope_theta + rope_scaling (Gemma 3: + rope_local_base_freq, always unscaled)
        JsonNode rp = cfg.get("rope_parameters");
        if (rp != null && rp.has("full_attention")) {
            globalFreq = freqs(rp.get("full_attention"), 10000);
            localFreq = rp.has("sliding_attention") ? freqs(rp.get("sliding_attention"), 10000) : globalFreq;
        } else {
            JsonNode global = rp != null && !rp.isNull() ? rp : cfg.get("rope_scaling");
            globalFreq = freqs(global, cfg.path("rope_theta").asDouble(10000));
            localFreq = type.equals("gemma3_text")
                    ? freqs(null, cfg.path("rope_local_base_freq").asDouble(10000)) : globalFreq;
        }
    }

    /** RoPE frequencies from a rope_parameters / rope_scaling node (default or linear) or null (default). */
    private double[] freqs(JsonNode rope, double theta) {
        double factor = 1;
        if (rope != null && !rope.isNull()) {
            theta = rope.path("rope_theta").asDouble(theta);
            String kind = rope.hasNonNull("rope_type") ? rope.get("rope_type").asText() : rope.path("type").asText("default");
            if (kind.equals("linear")) {
                factor = rope.get("factor").asDouble();
            } else if (!kind.equals("default")) {
                throw new IllegalArgumentException("reference: only default and linear rope, not " + kind);
            }
            if (rope.path("partial_rotary_factor").asDouble(1) != 1) {
                throw new IllegalArgumentException("reference: partial_rotary_factor must be 1");
            }
        }
        double[] f = freqs(theta);
        for (int i = 0; i < f.length; i++) {
            f[i] /= factor;
        }
        return f;
    }

    private double[] freqs(double theta) {
        double[] f = new double[headDim / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
        }
        return f;
    }

    public static ReferenceDecoder load(Path folder) throws IOException {
        JsonNode cfg = new ObjectMapper().readTree(folder.resolve("config.json").toFile());
        Map<String, SafetensorsTestReader.Tensor> weights = SafetensorsTestReader.readFolder(folder);
        if (weights.containsKey("transformer.wte.weight")) { // saved from GPT2LMHeadModel: names prefixed
            Map<String, SafetensorsTestReader.Tensor> plain = new java.util.HashMap<>();
            weights.forEach((k, v) -> plain.put(k.startsWith("transformer.") ? k.substring(12) : k, v));
            weights = plain;
        }
        return new ReferenceDecoder(cfg, weights);
    }

    // ------------------------------------------------------------------ forward

    /** Logits at every position, [T][vocab]. */
    public double[][] logits(int[] ids) {
        double[][] y = finalHidden(ids);
        double[][] head = tied ? embed() : mat("lm_head.weight");
        double[][] out = new double[ids.length][];
        for (int t = 0; t < ids.length; t++) {
            out[t] = matVec(head, y[t]);
        }
        return out;
    }

    /** Greedy decoding (first index on ties), re-running the whole sequence each step. */
    public int[] greedy(int[] prompt, int n) {
        int[] seq = Arrays.copyOf(prompt, prompt.length + n);
        for (int i = 0; i < n; i++) {
            double[][] l = logits(Arrays.copyOf(seq, prompt.length + i));
            seq[prompt.length + i] = ReferenceLlama.argmax(l[l.length - 1]);
        }
        return Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    /** After the final norm, before lm_head: [T][d]. */
    public double[][] finalHidden(int[] ids) {
        int n = ids.length;
        double[][] e = embed();
        double[][] h = new double[n][];
        for (int t = 0; t < n; t++) {
            h[t] = e[ids[t]].clone();
            if (type.equals("gemma3_text")) {
                for (int i = 0; i < d; i++) {
                    h[t][i] *= Math.sqrt(d);
                }
            }
            if (type.equals("gpt2")) {
                add(h[t], mat("wpe.weight")[t]);
            }
        }
        for (int l = 0; l < layers; l++) {
            String p = type.equals("gpt2") ? "h." + l + "." : "model.layers." + l + ".";
            double[][] a = new double[n][];
            switch (type) {
                case "olmo2" -> {
                    a = attention(l, p, h);
                    for (int t = 0; t < n; t++) {
                        add(h[t], rms(a[t], p + "post_attention_layernorm.weight"));
                    }
                    for (int t = 0; t < n; t++) {
                        add(h[t], rms(mlp(p, h[t]), p + "post_feedforward_layernorm.weight"));
                    }
                }
                case "gemma3_text" -> {
                    for (int t = 0; t < n; t++) {
                        a[t] = rms(h[t], p + "input_layernorm.weight");
                    }
                    a = attention(l, p, a);
                    for (int t = 0; t < n; t++) {
                        add(h[t], rms(a[t], p + "post_attention_layernorm.weight"));
                    }
                    for (int t = 0; t < n; t++) {
                        double[] m = mlp(p, rms(h[t], p + "pre_feedforward_layernorm.weight"));
                        add(h[t], rms(m, p + "post_feedforward_layernorm.weight"));
                    }
                }
                case "gpt2" -> {
                    for (int t = 0; t < n; t++) {
                        a[t] = layerNorm(h[t], p + "ln_1");
                    }
                    a = attention(l, p, a);
                    for (int t = 0; t < n; t++) {
                        add(h[t], a[t]);
                    }
                    for (int t = 0; t < n; t++) {
                        add(h[t], mlp(p, layerNorm(h[t], p + "ln_2")));
                    }
                }
                default -> {
                    for (int t = 0; t < n; t++) {
                        a[t] = rms(h[t], p + "input_layernorm.weight");
                    }
                    a = attention(l, p, a);
                    for (int t = 0; t < n; t++) {
                        add(h[t], a[t]);
                    }
                    for (int t = 0; t < n; t++) {
                        add(h[t], mlp(p, rms(h[t], p + "post_attention_layernorm.weight")));
                    }
                }
            }
        }
        double[][] y = new double[n][];
        for (int t = 0; t < n; t++) {
            y[t] = type.equals("gpt2") ? layerNorm(h[t], "ln_f") : rms(h[t], "model.norm.weight");
        }
        return y;
    }

    private double[][] embed() {
        return mat(type.equals("gpt2") ? "wte.weight" : "model.embed_tokens.weight");
    }

    /** Attention block output for all positions (input already normed where the family norms it). */
    private double[][] attention(int layer, String p, double[][] x) {
        int n = x.length;
        int qd = heads * headDim;
        int kd = kvHeads * headDim;
        double[][] q = new double[n][];
        double[][] k = new double[n][];
        double[][] v = new double[n][];
        for (int t = 0; t < n; t++) {
            if (type.equals("gpt2")) {
                double[] qkv = conv1d(x[t], p + "attn.c_attn");
                q[t] = Arrays.copyOfRange(qkv, 0, d);
                k[t] = Arrays.copyOfRange(qkv, d, 2 * d);
                v[t] = Arrays.copyOfRange(qkv, 2 * d, 3 * d);
            } else if (type.equals("phi3")) {
                double[] qkv = matVec(mat(p + "self_attn.qkv_proj.weight"), x[t]);
                q[t] = Arrays.copyOfRange(qkv, 0, qd);
                k[t] = Arrays.copyOfRange(qkv, qd, qd + kd);
                v[t] = Arrays.copyOfRange(qkv, qd + kd, qd + 2 * kd);
            } else {
                q[t] = matVec(mat(p + "self_attn.q_proj.weight"), x[t]);
                k[t] = matVec(mat(p + "self_attn.k_proj.weight"), x[t]);
                v[t] = matVec(mat(p + "self_attn.v_proj.weight"), x[t]);
                if (type.equals("qwen2")) {
                    add(q[t], vec(p + "self_attn.q_proj.bias"));
                    add(k[t], vec(p + "self_attn.k_proj.bias"));
                    add(v[t], vec(p + "self_attn.v_proj.bias"));
                }
            }
            if (type.equals("olmo2")) {
                q[t] = rms(q[t], p + "self_attn.q_norm.weight");
                k[t] = rms(k[t], p + "self_attn.k_norm.weight");
            }
            if (type.equals("qwen3") || type.equals("gemma3_text")) {
                for (int hh = 0; hh < heads; hh++) {
                    normHead(q[t], hh * headDim, p + "self_attn.q_norm.weight");
                }
                for (int hh = 0; hh < kvHeads; hh++) {
                    normHead(k[t], hh * headDim, p + "self_attn.k_norm.weight");
                }
            }
            if (!type.equals("gpt2")) {
                double[] f = isLocal(layer) ? localFreq : globalFreq;
                for (int hh = 0; hh < heads; hh++) {
                    rope(q[t], hh * headDim, t, f);
                }
                for (int hh = 0; hh < kvHeads; hh++) {
                    rope(k[t], hh * headDim, t, f);
                }
            }
        }
        int win = isLocal(layer) ? window : 0;
        int group = heads / kvHeads;
        double[][] out = new double[n][];
        for (int t = 0; t < n; t++) {
            double[] cat = new double[qd];
            for (int hh = 0; hh < heads; hh++) {
                int qo = hh * headDim;
                int ko = (hh / group) * headDim;
                double[] s = new double[t + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= t; j++) {
                    if (win > 0 && t - j >= win) {
                        s[j] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double dot = 0;
                    for (int i = 0; i < headDim; i++) {
                        dot += q[t][qo + i] * k[j][ko + i];
                    }
                    s[j] = dot * scale;
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j <= t; j++) {
                    s[j] = Math.exp(s[j] - max);
                    sum += s[j];
                }
                for (int j = 0; j <= t; j++) {
                    for (int i = 0; i < headDim; i++) {
                        cat[qo + i] += s[j] / sum * v[j][ko + i];
                    }
                }
            }
            out[t] = type.equals("gpt2") ? conv1d(cat, p + "attn.c_proj")
                    : matVec(mat(p + "self_attn.o_proj.weight"), cat);
        }
        return out;
    }

    private boolean isLocal(int layer) {
        return local[layer];
    }

    private double[] mlp(String p, double[] x) {
        if (type.equals("gpt2")) {
            double[] z = conv1d(x, p + "mlp.c_fc");
            for (int i = 0; i < z.length; i++) {
                z[i] = geluTanh(z[i]);
            }
            return conv1d(z, p + "mlp.c_proj");
        }
        double[] g;
        double[] u;
        if (type.equals("phi3")) {
            double[] gu = matVec(mat(p + "mlp.gate_up_proj.weight"), x);
            g = Arrays.copyOfRange(gu, 0, ff);
            u = Arrays.copyOfRange(gu, ff, 2 * ff);
        } else {
            g = matVec(mat(p + "mlp.gate_proj.weight"), x);
            u = matVec(mat(p + "mlp.up_proj.weight"), x);
        }
        for (int i = 0; i < ff; i++) {
            double a = type.equals("gemma3_text") ? geluTanh(g[i]) : g[i] / (1 + Math.exp(-g[i]));
            g[i] = a * u[i];
        }
        return matVec(mat(p + "mlp.down_proj.weight"), g);
    }

    static double geluTanh(double z) {
        return 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z)));
    }

    private void rope(double[] x, int off, int pos, double[] freq) {
        int half = headDim / 2;
        for (int i = 0; i < half; i++) {
            double c = Math.cos(pos * freq[i]);
            double s = Math.sin(pos * freq[i]);
            double a = x[off + i];
            double b = x[off + half + i];
            x[off + i] = a * c - b * s;
            x[off + half + i] = b * c + a * s;
        }
    }

    /** RMSNorm; Gemma multiplies by (1 + w). */
    private double[] rms(double[] x, String weight) {
        double[] wt = vec(weight);
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double r = 1 / Math.sqrt(ss / x.length + eps);
        double off = type.equals("gemma3_text") ? 1 : 0;
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * r * (off + wt[i]);
        }
        return y;
    }

    private void normHead(double[] x, int off, String weight) {
        double[] y = rms(Arrays.copyOfRange(x, off, off + headDim), weight);
        System.arraycopy(y, 0, x, off, headDim);
    }

    private double[] layerNorm(double[] x, String prefix) {
        double[] wt = vec(prefix + ".weight");
        double[] b = vec(prefix + ".bias");
        double mean = 0;
        for (double v : x) {
            mean += v;
        }
        mean /= x.length;
        double var = 0;
        for (double v : x) {
            var += (v - mean) * (v - mean);
        }
        var /= x.length;
        double r = 1 / Math.sqrt(var + eps);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = (x[i] - mean) * r * wt[i] + b[i];
        }
        return y;
    }

    /** GPT-2's Conv1D: y = x W + b with W stored (in, out). */
    private double[] conv1d(double[] x, String prefix) {
        SafetensorsTestReader.Tensor t = w.get(prefix + ".weight");
        int in = (int) t.shape()[0];
        int out = (int) t.shape()[1];
        double[] y = vec(prefix + ".bias").clone();
        for (int i = 0; i < in; i++) {
            for (int o = 0; o < out; o++) {
                y[o] += x[i] * t.data()[i * out + o];
            }
        }
        return y;
    }

    private double[][] mat(String name) {
        SafetensorsTestReader.Tensor t = w.get(name);
        if (t == null) {
            throw new IllegalArgumentException("missing tensor " + name);
        }
        int rows = (int) t.shape()[0];
        int cols = (int) t.shape()[1];
        double[][] m = new double[rows][];
        for (int r = 0; r < rows; r++) {
            m[r] = Arrays.copyOfRange(t.data(), r * cols, (r + 1) * cols);
        }
        return m;
    }

    private double[] vec(String name) {
        SafetensorsTestReader.Tensor t = w.get(name);
        if (t == null) {
            throw new IllegalArgumentException("missing tensor " + name);
        }
        return t.data();
    }

    private static double[] matVec(double[][] m, double[] x) {
        double[] y = new double[m.length];
        for (int o = 0; o < m.length; o++) {
            double s = 0;
            for (int i = 0; i < x.length; i++) {
                s += m[o][i] * x[i];
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

    public int vocabSize() {
        return vocab;
    }
}
