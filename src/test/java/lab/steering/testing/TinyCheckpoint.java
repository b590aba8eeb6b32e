package lab.steering.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Writes a random-weight Hugging Face Llama checkpoint folder for tests: config.json (HF field names),
 * model.safetensors (HF tensor names) or two shards plus model.safetensors.index.json, and a WordLevel
 * tokenizer.json of the same form as stories260K's (vocab t0..t{V-1}, WhitespaceSplit, unk t0, no BOS added).
 *
 * <pre>
 * Path dir = TinyCheckpoint.llama().hidden(32).layers(2).heads(4).kvHeads(2).intermediate(48).vocab(64)
 *         .tied(false).llama3RopeScaling(8, 1, 4, 32).dtype("BF16").sharded(true).seed(7).writeTo(tmp);
 * </pre>
 *
 * Weights: embeddings and all projections ~ N(0, std) (default std 0.1, see {@link #std(double)}); norm weights
 * 1 + N(0, 0.05). With std 0.1 and hidden 32 the logits spread over a few units: peaked but not one-hot.
 * Values come from java.util.Random(seed).nextGaussian(), so a seed gives the same doubles on every JVM; the
 * F16/BF16 files hold the same doubles rounded to nearest-even, so variants differ only by that rounding.
 */
public final class TinyCheckpoint {

    private int hidden = 32;
    private int layers = 2;
    private int heads = 4;
    private int kvHeads = 2;
    private Integer headDim;            // null: head_dim omitted from config.json (HF derives hidden / heads)
    private int intermediate = 48;
    private int vocab = 64;
    private int maxPositions = 128;
    private boolean tied = true;
    private double ropeTheta = 10000;
    private double rmsNormEps = 1e-5;
    private double[] llama3;           // {factor, lowFreqFactor, highFreqFactor, originalMax}, or null
    private String dtype = "F32";
    private boolean sharded;
    private long seed = 1;
    private double std = 0.1;
    private String modelType = "llama";
    private Integer slidingWindow;      // null: sliding_window omitted (or null)
    private int slidingPattern = 6;     // Gemma 3: every pattern-th layer is global
    private double localRopeTheta = 10000;
    private Double queryPreAttnScalar;  // Gemma 3
    private Double linearRopeFactor;    // rope_scaling {"rope_type": "linear", "factor"}

    private TinyCheckpoint() {
    }

    public static TinyCheckpoint llama() {
        return new TinyCheckpoint();
    }

    /**
     * A checkpoint of another family, with that family's config fields and HF tensor names: "mistral", "qwen2"
     * (q/k/v biases), "qwen3" (per-head q_norm/k_norm), "olmo2" (post-norms, full-width QK-norm), "gemma3_text"
     * (sandwich norms, GeGLU, scaled embeddings, local/global layers), "phi3" (fused qkv_proj, gate_up_proj),
     * "gpt2" (Conv1D layout, LayerNorm with bias, learned positions; heads == kvHeads, intermediate free).
     */
    public static TinyCheckpoint family(String modelType) {
        TinyCheckpoint t = new TinyCheckpoint();
        t.modelType = modelType;
        return t;
    }

    public String modelType() {
        return modelType;
    }

    /** sliding_window (Mistral, Phi-3, Gemma 3). */
    public TinyCheckpoint slidingWindow(int v) { slidingWindow = v; return this; }

    /** Gemma 3's sliding_window_pattern: layer l is global when (l + 1) % pattern == 0. */
    public TinyCheckpoint slidingPattern(int v) { slidingPattern = v; return this; }

    /** Gemma 3's rope_local_base_freq. */
    public TinyCheckpoint localRopeTheta(double v) { localRopeTheta = v; return this; }

    /** Gemma 3's query_pre_attn_scalar. */
    public TinyCheckpoint queryPreAttnScalar(double v) { queryPreAttnScalar = v; return this; }

    /** rope_scaling {"rope_type": "linear", "factor": v}. */
    public TinyCheckpoint linearRopeScaling(double v) { linearRopeFactor = v; return this; }

    public TinyCheckpoint hidden(int v) { hidden = v; return this; }

    public TinyCheckpoint layers(int v) { layers = v; return this; }

    public TinyCheckpoint heads(int v) { heads = v; return this; }

    public TinyCheckpoint kvHeads(int v) { kvHeads = v; return this; }

    /** Explicit head_dim (written to config.json; q_proj then has heads * headDim rows, may differ from hidden). */
    public TinyCheckpoint headDim(int v) { headDim = v; return this; }

    public TinyCheckpoint intermediate(int v) { intermediate = v; return this; }

    public TinyCheckpoint vocab(int v) { vocab = v; return this; }

    public TinyCheckpoint maxPositions(int v) { maxPositions = v; return this; }

    public TinyCheckpoint tied(boolean v) { tied = v; return this; }

    public TinyCheckpoint ropeTheta(double v) { ropeTheta = v; return this; }

    public TinyCheckpoint rmsNormEps(double v) { rmsNormEps = v; return this; }

    /** rope_scaling {"rope_type": "llama3", factor, low_freq_factor, high_freq_factor, original_max_position_embeddings}. */
    public TinyCheckpoint llama3RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMax) {
        llama3 = new double[] {factor, lowFreqFactor, highFreqFactor, originalMax};
        return this;
    }

    /** "F32" (default), "F16" or "BF16". */
    public TinyCheckpoint dtype(String v) { SafetensorsTestWriter.bytesPerElement(v); dtype = v; return this; }

    /** Two shards (model-00001-of-00002.safetensors, ...) plus model.safetensors.index.json. */
    public TinyCheckpoint sharded(boolean v) { sharded = v; return this; }

    public TinyCheckpoint seed(long v) { seed = v; return this; }

    /** Standard deviation of embedding and projection weights (default 0.1). */
    public TinyCheckpoint std(double v) { std = v; return this; }

    /** Writes the folder (created if needed) and returns it. */
    public Path writeTo(Path dir) throws IOException {
        if (vocab < 3 || heads % kvHeads != 0 || (headDim == null && hidden % heads != 0)) {
            throw new IllegalArgumentException("vocab >= 3, heads % kvHeads == 0, hidden % heads == 0 (or headDim)");
        }
        Files.createDirectories(dir);
        writeConfig(dir);
        writeWeights(dir);
        Files.writeString(dir.resolve("tokenizer.json"), tokenizerJson(vocab));
        return dir;
    }

    private void writeConfig(Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode c = json.createObjectNode();
        if (modelType.equals("gpt2")) {
            c.putArray("architectures").add("GPT2LMHeadModel");
            c.put("model_type", "gpt2");
            c.put("n_embd", hidden);
            c.put("n_layer", layers);
            c.put("n_head", heads);
            c.put("n_inner", intermediate);
            c.put("n_positions", maxPositions);
            c.put("n_ctx", maxPositions);
            c.put("vocab_size", vocab);
            c.put("layer_norm_epsilon", rmsNormEps);
            c.put("activation_function", "gelu_new");
            c.put("scale_attn_weights", true);
            c.put("scale_attn_by_inverse_layer_idx", false);
            c.put("reorder_and_upcast_attn", false);
            c.put("tie_word_embeddings", true);
            c.put("bos_token_id", 1);
            c.put("eos_token_id", 2);
            c.put("torch_dtype", "float32");
            json.writeValue(dir.resolve("config.json").toFile(), c);
            return;
        }
        c.putArray("architectures").add(switch (modelType) {
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            case "olmo2" -> "Olmo2ForCausalLM";
            case "gemma3_text" -> "Gemma3ForCausalLM";
            case "phi3" -> "Phi3ForCausalLM";
            default -> "LlamaForCausalLM";
        });
        c.put("model_type", modelType);
        c.put("hidden_size", hidden);
        c.put("intermediate_size", intermediate);
        c.put("num_hidden_layers", layers);
        c.put("num_attention_heads", heads);
        c.put("num_key_value_heads", kvHeads);
        if (headDim != null) {
            c.put("head_dim", headDim);
        }
        c.put("vocab_size", vocab);
        c.put("max_position_embeddings", maxPositions);
        c.put("rms_norm_eps", rmsNormEps);
        c.put("rope_theta", ropeTheta);
        if (llama3 != null) {
            ObjectNode r = c.putObject("rope_scaling");
            r.put("rope_type", "llama3");
            r.put("factor", llama3[0]);
            r.put("low_freq_factor", llama3[1]);
            r.put("high_freq_factor", llama3[2]);
            r.put("original_max_position_embeddings", (int) llama3[3]);
        } else if (linearRopeFactor != null) {
            ObjectNode r = c.putObject("rope_scaling");
            r.put("rope_type", "linear");
            r.put("factor", linearRopeFactor);
        } else {
            c.putNull("rope_scaling");
        }
        c.put("tie_word_embeddings", tied);
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        c.put("torch_dtype", switch (dtype) {
            case "F16" -> "float16";
            case "BF16" -> "bfloat16";
            default -> "float32";
        });
        if (modelType.equals("gemma3_text")) {
            c.put("hidden_activation", "gelu_pytorch_tanh");
            // an integer, as in Gemma 3's configs (transformers 5 refuses 24.0: "expected int")
            double scalar = queryPreAttnScalar != null ? queryPreAttnScalar : headDim();
            if (scalar == Math.rint(scalar)) {
                c.put("query_pre_attn_scalar", (int) scalar);
            } else {
                c.put("query_pre_attn_scalar", scalar);
            }
            c.put("rope_local_base_freq", localRopeTheta);
            c.put("sliding_window_pattern", slidingPattern);
            c.putNull("attn_logit_softcapping");
            c.putNull("final_logit_softcapping");
        } else {
            c.put("hidden_act", "silu");
        }
        if (slidingWindow != null) {
            c.put("sliding_window", slidingWindow);
        } else if (!modelType.equals("llama")) {
            c.putNull("sliding_window");
        }
        if (modelType.equals("qwen2") || modelType.equals("qwen3")) {
            c.put("use_sliding_window", false);
        }
        if (!modelType.equals("qwen2")) {
            c.put("attention_bias", false);
        }
        if (modelType.equals("llama")) {
            c.put("mlp_bias", false);
        }
        if (modelType.equals("phi3")) {
            c.put("pad_token_id", 0); // Phi3Config's default, 32000, must be < vocab_size for transformers to load it
        }
        json.writeValue(dir.resolve("config.json").toFile(), c);
    }

    private int headDim() {
        return headDim != null ? headDim : hidden / heads;
    }

    private void writeWeights(Path dir) throws IOException {
        int hd = headDim();
        Random rnd = new Random(seed);
        List<Object[]> tensors = new ArrayList<>(); // {name, long[] shape, double[] values}, HF's names
        if (modelType.equals("gpt2")) {
            gpt2Tensors(rnd, tensors);
        } else {
            tensors.add(gaussian(rnd, "model.embed_tokens.weight", vocab, hidden));
            for (int l = 0; l < layers; l++) {
                String p = "model.layers." + l + ".";
                boolean post = modelType.equals("olmo2") || modelType.equals("gemma3_text");
                if (!modelType.equals("olmo2")) {
                    tensors.add(norm(rnd, p + "input_layernorm.weight", hidden));
                }
                if (modelType.equals("phi3")) {
                    tensors.add(gaussian(rnd, p + "self_attn.qkv_proj.weight", (heads + 2 * kvHeads) * hd, hidden));
                } else {
                    tensors.add(gaussian(rnd, p + "self_attn.q_proj.weight", heads * hd, hidden));
                    tensors.add(gaussian(rnd, p + "self_attn.k_proj.weight", kvHeads * hd, hidden));
                    tensors.add(gaussian(rnd, p + "self_attn.v_proj.weight", kvHeads * hd, hidden));
                }
                if (modelType.equals("qwen2")) {
                    tensors.add(gaussian(rnd, p + "self_attn.q_proj.bias", heads * hd));
                    tensors.add(gaussian(rnd, p + "self_attn.k_proj.bias", kvHeads * hd));
                    tensors.add(gaussian(rnd, p + "self_attn.v_proj.bias", kvHeads * hd));
                }
                if (modelType.equals("qwen3") || modelType.equals("gemma3_text")) {
                    tensors.add(norm(rnd, p + "self_attn.q_norm.weight", hd));
                    tensors.add(norm(rnd, p + "self_attn.k_norm.weight", hd));
                } else if (modelType.equals("olmo2")) {
                    tensors.add(norm(rnd, p + "self_attn.q_norm.weight", heads * hd));
                    tensors.add(norm(rnd, p + "self_attn.k_norm.weight", kvHeads * hd));
                }
                tensors.add(gaussian(rnd, p + "self_attn.o_proj.weight", hidden, heads * hd));
                tensors.add(norm(rnd, p + "post_attention_layernorm.weight", hidden));
                if (modelType.equals("gemma3_text")) {
                    tensors.add(norm(rnd, p + "pre_feedforward_layernorm.weight", hidden));
                }
                if (post) {
                    tensors.add(norm(rnd, p + "post_feedforward_layernorm.weight", hidden));
                }
                if (modelType.equals("phi3")) {
                    tensors.add(gaussian(rnd, p + "mlp.gate_up_proj.weight", 2 * intermediate, hidden));
                } else {
                    tensors.add(gaussian(rnd, p + "mlp.gate_proj.weight", intermediate, hidden));
                    tensors.add(gaussian(rnd, p + "mlp.up_proj.weight", intermediate, hidden));
                }
                tensors.add(gaussian(rnd, p + "mlp.down_proj.weight", hidden, intermediate));
            }
            tensors.add(norm(rnd, "model.norm.weight", hidden));
            if (!tied) {
                tensors.add(gaussian(rnd, "lm_head.weight", vocab, hidden));
            }
        }

        int shards = sharded ? 2 : 1;
        int perShard = (tensors.size() + shards - 1) / shards;
        Map<String, String> weightMap = new LinkedHashMap<>();
        long totalSize = 0;
        for (int s = 0; s < shards; s++) {
            String file = sharded ? String.format("model-%05d-of-%05d.safetensors", s + 1, shards) : "model.safetensors";
            SafetensorsTestWriter writer = new SafetensorsTestWriter(dtype);
            for (Object[] t : tensors.subList(s * perShard, Math.min(tensors.size(), (s + 1) * perShard))) {
                writer.add((String) t[0], (long[]) t[1], (double[]) t[2]);
                weightMap.put((String) t[0], file);
            }
            writer.write(dir.resolve(file));
            totalSize += writer.dataBytes();
        }
        if (sharded) {
            Map<String, Object> index = new LinkedHashMap<>();
            index.put("metadata", Map.of("total_size", totalSize));
            index.put("weight_map", weightMap);
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                    .writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);
        }
    }

    private Object[] gaussian(Random rnd, String name, int rows, int cols) {
        double[] v = new double[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = std * rnd.nextGaussian();
        }
        return new Object[] {name, new long[] {rows, cols}, v};
    }

    /**
     * A norm weight: 1 + N(0, 0.05); Gemma stores w and multiplies by 1 + w, so there N(0, 0.05) (the same
     * effective scale).
     */
    private Object[] norm(Random rnd, String name, int n) {
        double[] v = new double[n];
        double base = modelType.equals("gemma3_text") ? 0 : 1;
        for (int i = 0; i < v.length; i++) {
            v[i] = base + 0.05 * rnd.nextGaussian();
        }
        return new Object[] {name, new long[] {n}, v};
    }

    private Object[] gaussian(Random rnd, String name, int n) {
        double[] v = new double[n];
        for (int i = 0; i < v.length; i++) {
            v[i] = std * rnd.nextGaussian();
        }
        return new Object[] {name, new long[] {n}, v};
    }

    /** GPT-2's names, unprefixed as in the original checkpoints; Conv1D weights stored (in, out). */
    private void gpt2Tensors(Random rnd, List<Object[]> tensors) {
        tensors.add(gaussian(rnd, "wte.weight", vocab, hidden));
        tensors.add(gaussian(rnd, "wpe.weight", maxPositions, hidden));
        for (int l = 0; l < layers; l++) {
            String p = "h." + l + ".";
            tensors.add(norm(rnd, p + "ln_1.weight", hidden));
            tensors.add(gaussian(rnd, p + "ln_1.bias", hidden));
            tensors.add(gaussian(rnd, p + "attn.c_attn.weight", hidden, 3 * hidden));
            tensors.add(gaussian(rnd, p + "attn.c_attn.bias", 3 * hidden));
            tensors.add(gaussian(rnd, p + "attn.c_proj.weight", hidden, hidden));
            tensors.add(gaussian(rnd, p + "attn.c_proj.bias", hidden));
            tensors.add(norm(rnd, p + "ln_2.weight", hidden));
            tensors.add(gaussian(rnd, p + "ln_2.bias", hidden));
            tensors.add(gaussian(rnd, p + "mlp.c_fc.weight", hidden, intermediate));
            tensors.add(gaussian(rnd, p + "mlp.c_fc.bias", intermediate));
            tensors.add(gaussian(rnd, p + "mlp.c_proj.weight", intermediate, hidden));
            tensors.add(gaussian(rnd, p + "mlp.c_proj.bias", hidden));
        }
        tensors.add(norm(rnd, "ln_f.weight", hidden));
        tensors.add(gaussian(rnd, "ln_f.bias", hidden));
    }

    /** Same form as stories260K's tokenizer.json: "t0".."t{V-1}" -> 0..V-1, WhitespaceSplit, unk t0. */
    static String tokenizerJson(int vocabSize) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n")
                .append("  \"added_tokens\": [],\n  \"normalizer\": null,\n")
                .append("  \"pre_tokenizer\": {\n    \"type\": \"WhitespaceSplit\"\n  },\n")
                .append("  \"post_processor\": null,\n  \"decoder\": null,\n")
                .append("  \"model\": {\n    \"type\": \"WordLevel\",\n    \"vocab\": {\n");
        for (int i = 0; i < vocabSize; i++) {
            sb.append("      \"t").append(i).append("\": ").append(i).append(i + 1 < vocabSize ? ",\n" : "\n");
        }
        sb.append("    },\n    \"unk_token\": \"t0\"\n  }\n}\n");
        return sb.toString();
    }
}
