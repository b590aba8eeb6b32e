package lab.steering.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The typed content of a Hugging Face {@code config.json} for the architectures this project runs.
 * Every field the forward pass depends on is read and checked here; nothing else parses config.json.
 *
 * @param modelType          HF {@code model_type}, e.g. "llama"
 * @param hiddenSize         d, width of the residual stream
 * @param intermediateSize   width of the MLP's hidden layer
 * @param numLayers          number of decoder layers L
 * @param numHeads           query heads H
 * @param numKvHeads         key/value heads (GQA: H is a multiple of it)
 * @param headDim            width of one head (config's head_dim, else d / H)
 * @param vocabSize          V
 * @param maxPositions       context length the model was trained for
 * @param rmsNormEps         epsilon inside RMSNorm's rsqrt
 * @param ropeTheta          RoPE base
 * @param ropeScaling        RoPE frequency scaling, or null
 * @param tieWordEmbeddings  lm_head shares the embedding matrix
 * @param bosTokenId         BOS id from config, or -1
 * @param eosTokenIds        ids that end generation (config and generation_config.json)
 * @param torchDtype         stored dtype as the config names it ("float32", "bfloat16", ...)
 * @param family             the architecture's variations as data (norms, biases, MLP form, ...)
 * @param slidingWindow      attention window w (query i sees keys j with i - w < j <= i), 0 for none
 * @param slidingLayers      per layer: true where the layer uses the sliding window (all false without one)
 * @param localRopeTheta     RoPE base of sliding-window layers (Gemma 3's rope_local_base_freq; else ropeTheta),
 *                           always unscaled there
 * @param attentionScale     factor on q.k (1/sqrt(head_dim); Gemma 3: query_pre_attn_scalar^-0.5)
 */
public record ModelConfig(
        String modelType,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int vocabSize,
        int maxPositions,
        double rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        boolean tieWordEmbeddings,
        int bosTokenId,
        List<Integer> eosTokenIds,
        String torchDtype,
        Family family,
        int slidingWindow,
        List<Boolean> slidingLayers,
        double localRopeTheta,
        double attentionScale) {

    /** The attention window of a layer, or 0 for full causal attention. */
    public int window(int layer) {
        return slidingLayers.get(layer) ? slidingWindow : 0;
    }

    /** Model types this build can run. */
    public static final Set<String> SUPPORTED_TYPES = Set.of("llama", "mistral", "qwen2", "qwen3", "olmo2", "gemma3_text", "phi3", "gpt2");

    /**
     * RoPE frequency scaling as HF's {@code rope_scaling} describes it.
     *
     * @param type "linear" or "llama3"
     */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositions) {
    }

    /** Grouped-query attention: query heads per key/value head. */
    public int groupSize() {
        return numHeads / numKvHeads;
    }

    /** Parameters excluding nothing: embeddings, positions, every layer (biases and norms too), final norm, lm_head. */
    public long parameterCount() {
        long d = hiddenSize;
        long q = (long) numHeads * headDim;
        long kv = (long) numKvHeads * headDim;
        long normSize = family.norm() == Family.NormKind.LAYER ? 2 * d : d;
        long attn = d * q * 2L + d * kv * 2L;
        if (family.qkvBias()) {
            attn += q + 2 * kv;
        }
        if (family.denseBias()) {
            attn += d;
        }
        attn += switch (family.qkNorm()) {
            case NONE -> 0;
            case PER_HEAD -> 2L * headDim;
            case FULL -> q + kv;
        };
        long mlp = family.mlp() == Family.Mlp.PLAIN ? 2L * d * intermediateSize : 3L * d * intermediateSize;
        if (family.denseBias()) {
            mlp += intermediateSize + d;
        }
        int norms = family.layout() == Family.Layout.SANDWICH ? 4 : 2;
        long perLayer = attn + mlp + norms * normSize;
        long embed = (long) vocabSize * d;
        long positions = family.positions() == Family.Positions.LEARNED ? (long) maxPositions * d : 0;
        return embed + positions + numLayers * perLayer + normSize + (tieWordEmbeddings ? 0 : embed);
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Reads {@code config.json} (and the EOS ids of {@code generation_config.json} when present) from a model folder.
     * Absent optional fields take transformers' per-family defaults (checked by HfFamiliesTest against what
     * transformers 5.18 makes of the same config): RMSNorm eps 1e-5 for OLMo 2 and Phi-3, else 1e-6; a 4096 window for
     * Mistral and Gemma 3 when sliding_window is absent (null: none); Gemma 3's global RoPE base 1e6 and
     * query_pre_attn_scalar 256; GPT-2's 1024 positions.
     */
    public static ModelConfig read(Path folder) {
        Path file = folder.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException(file, "missing (a Hugging Face model folder needs config.json)");
        }
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelLoadException(file, "not valid JSON: " + e.getMessage());
        }
        Reader r = new Reader(file, root);
        String type = r.string("model_type");
        Family family = Family.of(type);
        if (family == null || !SUPPORTED_TYPES.contains(type)) {
            throw new ModelLoadException(file, "model_type '" + type + "' is not supported (supported: "
                    + String.join(", ", SUPPORTED_TYPES.stream().sorted().toList()) + ")");
        }
        boolean gpt2 = family.naming() == Family.Naming.GPT2;
        int d = r.positiveInt(gpt2 ? "n_embd" : "hidden_size");
        int heads = r.positiveInt(gpt2 ? "n_head" : "num_attention_heads");
        int kvHeads = root.hasNonNull("num_key_value_heads") ? r.positiveInt("num_key_value_heads") : heads;
        if (heads % kvHeads != 0) {
            throw new ModelLoadException(file, "num_attention_heads " + heads
                    + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        int headDim;
        if (root.hasNonNull("head_dim")) {
            headDim = r.positiveInt("head_dim");
        } else {
            if (d % heads != 0) {
                throw new ModelLoadException(file, "hidden_size " + d + " is not a multiple of num_attention_heads " + heads);
            }
            headDim = d / heads;
        }
        if (headDim % 2 != 0 && family.positions() == Family.Positions.ROPE) {
            throw new ModelLoadException(file, "head_dim " + headDim + " must be even for RoPE");
        }
        checkActivation(file, root, family);
        checkUnsupported(file, root, family);
        int layers = r.positiveInt(gpt2 ? "n_layer" : "num_hidden_layers");
        int intermediate = gpt2
                ? (root.hasNonNull("n_inner") ? r.positiveInt("n_inner") : 4 * d)
                : r.positiveInt("intermediate_size");
        // transformers 5 writes rope_parameters {rope_type, rope_theta, ...}; older configs rope_theta + rope_scaling
        JsonNode ropeParams = root.get("rope_parameters");
        JsonNode localParams = null; // transformers 5 writes Gemma 3's per layer type: {full_attention, sliding_attention}
        if (ropeParams != null && ropeParams.has("full_attention")) {
            localParams = ropeParams.get("sliding_attention");
            ropeParams = ropeParams.get("full_attention");
            if (localParams != null && !localParams.path("rope_type").asText("default").equals("default")) {
                throw new ModelLoadException(file, "rope_parameters.sliding_attention.rope_type '"
                        + localParams.get("rope_type").asText() + "' is not supported (supported: default)");
            }
        }
        JsonNode ropeNode = ropeParams != null && !ropeParams.isNull() ? ropeParams : root.get("rope_scaling");
        String positionsField = gpt2 ? "n_positions" : "max_position_embeddings";
        int maxPositions = root.hasNonNull(positionsField) ? r.positiveInt(positionsField) : gpt2 ? 1024 : 2048;
        RopeScaling scaling = readRopeScaling(file, ropeNode, maxPositions);
        boolean gemma = family.modelType().equals("gemma3_text");
        double ropeTheta = ropeParams != null && ropeParams.hasNonNull("rope_theta")
                ? ropeParams.get("rope_theta").asDouble() : root.path("rope_theta").asDouble(gemma ? 1e6 : 10000.0);
        double localTheta = !family.modelType().equals("gemma3_text") ? ropeTheta
                : localParams != null && localParams.hasNonNull("rope_theta") ? localParams.get("rope_theta").asDouble()
                : root.path("rope_local_base_freq").asDouble(10000.0);
        int window = slidingWindow(file, root, family);
        List<Boolean> sliding = slidingLayers(file, root, family, layers, window);
        double attnScale = gemma ? 1.0 / Math.sqrt(root.path("query_pre_attn_scalar").asDouble(256))
                : 1.0 / Math.sqrt(headDim);
        List<Integer> eos = new ArrayList<>(r.ids("eos_token_id"));
        Path gen = folder.resolve("generation_config.json");
        if (Files.isRegularFile(gen)) {
            try {
                JsonNode g = JSON.readTree(gen.toFile());
                for (int id : new Reader(gen, g).ids("eos_token_id")) {
                    if (!eos.contains(id)) {
                        eos.add(id);
                    }
                }
            } catch (IOException e) {
                throw new ModelLoadException(gen, "not valid JSON: " + e.getMessage());
            }
        }
        boolean tiedDefault = gpt2 || family.modelType().equals("gemma3_text");
        double eps = gpt2 ? root.path("layer_norm_epsilon").asDouble(1e-5)
                : root.path("rms_norm_eps").asDouble(Set.of("olmo2", "phi3").contains(type) ? 1e-5 : 1e-6);
        return new ModelConfig(
                type,
                d,
                intermediate,
                layers,
                heads,
                kvHeads,
                headDim,
                r.positiveInt("vocab_size"),
                maxPositions,
                eps,
                ropeTheta,
                scaling,
                root.path("tie_word_embeddings").asBoolean(tiedDefault),
                root.hasNonNull("bos_token_id") ? root.get("bos_token_id").asInt() : -1,
                List.copyOf(eos),
                root.hasNonNull("torch_dtype") ? root.get("torch_dtype").asText() : root.path("dtype").asText("float32"),
                family,
                window,
                sliding,
                localTheta,
                attnScale);
    }

    private static void checkActivation(Path file, JsonNode root, Family family) {
        String field;
        String act;
        List<String> allowed;
        if (family.naming() == Family.Naming.GPT2) {
            field = "activation_function";
            act = root.path(field).asText("gelu_new");
            allowed = List.of("gelu_new", "gelu_pytorch_tanh");
        } else if (family.activation() == Family.Activation.GELU_TANH) {
            field = root.hasNonNull("hidden_activation") ? "hidden_activation" : "hidden_act";
            act = root.path(field).asText("gelu_pytorch_tanh");
            allowed = List.of("gelu_pytorch_tanh", "gelu_new");
        } else {
            field = "hidden_act";
            act = root.path(field).asText("silu");
            allowed = List.of("silu");
        }
        if (!allowed.contains(act)) {
            throw new ModelLoadException(file, field + " '" + act + "' is not supported for " + family.modelType()
                    + " (supported: " + String.join(", ", allowed) + ")");
        }
    }

    /** Config fields whose non-default values this build cannot run: a clear error naming the field. */
    private static void checkUnsupported(Path file, JsonNode root, Family f) {
        if (!f.qkvBias() && root.path("attention_bias").asBoolean(false)) {
            throw new ModelLoadException(file, "attention_bias=true is not supported for " + f.modelType());
        }
        if (root.path("mlp_bias").asBoolean(false)) {
            throw new ModelLoadException(file, "mlp_bias=true is not supported for " + f.modelType());
        }
        for (String cap : List.of("attn_logit_softcapping", "final_logit_softcapping")) {
            if (root.hasNonNull(cap)) {
                throw new ModelLoadException(file, cap + "=" + root.get(cap) + " is not supported (only null)");
            }
        }
        if (root.path("use_bidirectional_attention").asBoolean(false)) {
            throw new ModelLoadException(file, "use_bidirectional_attention=true is not supported (causal models only)");
        }
        // older configs write partial_rotary_factor at the top level, transformers 5 inside rope_parameters (Phi-3,
        // whose HF code rotates only the first head_dim * factor dimensions; Phi-4-mini ships 0.75)
        JsonNode rp = root.path("rope_parameters");
        for (JsonNode n : List.of(root, rp, rp.path("full_attention"), rp.path("sliding_attention"))) {
            if (n.hasNonNull("partial_rotary_factor") && n.get("partial_rotary_factor").asDouble() != 1.0) {
                throw new ModelLoadException(file, "partial_rotary_factor=" + n.get("partial_rotary_factor")
                        + " is not supported (only 1.0)");
            }
        }
        if (f.naming() == Family.Naming.GPT2) {
            if (!root.path("scale_attn_weights").asBoolean(true)
                    || root.path("scale_attn_by_inverse_layer_idx").asBoolean(false)
                    || root.path("reorder_and_upcast_attn").asBoolean(false)) {
                throw new ModelLoadException(file, "scale_attn_weights=false, scale_attn_by_inverse_layer_idx=true and"
                        + " reorder_and_upcast_attn=true are not supported for gpt2");
            }
        }
    }

    private static int slidingWindow(Path file, JsonNode root, Family f) {
        String t = f.modelType();
        if (t.equals("qwen2") || t.equals("qwen3")) {
            if (root.path("use_sliding_window").asBoolean(false)) {
                throw new ModelLoadException(file, "use_sliding_window=true is not supported for " + t);
            }
            return 0;
        }
        if (!(t.equals("mistral") || t.equals("gemma3_text") || t.equals("phi3"))) {
            return 0;
        }
        if (!root.has("sliding_window") && !t.equals("phi3")) {
            return 4096; // transformers' MistralConfig and Gemma3TextConfig default when the field is absent (not null)
        }
        if (!root.hasNonNull("sliding_window")) {
            return 0;
        }
        JsonNode n = root.get("sliding_window");
        if (!n.canConvertToInt() || n.asInt() <= 0) {
            throw new ModelLoadException(file, "field 'sliding_window' must be null or a positive integer");
        }
        return n.asInt();
    }

    private static List<Boolean> slidingLayers(Path file, JsonNode root, Family f, int layers, int window) {
        List<Boolean> out = new ArrayList<>();
        JsonNode types = root.get("layer_types");
        if (types != null && !types.isNull()) {
            if (!types.isArray() || types.size() != layers) {
                throw new ModelLoadException(file, "field 'layer_types' must list one type per layer (" + layers + ")");
            }
            for (JsonNode n : types) {
                String s = n.asText();
                if (!s.equals("full_attention") && !s.equals("sliding_attention")) {
                    throw new ModelLoadException(file, "layer type '" + s + "' is not supported"
                            + " (supported: full_attention, sliding_attention)");
                }
                if (s.equals("sliding_attention") && window == 0) {
                    throw new ModelLoadException(file, "layer_types has sliding_attention but no sliding_window");
                }
                out.add(s.equals("sliding_attention"));
            }
            return List.copyOf(out);
        }
        if (f.modelType().equals("gemma3_text") && window > 0) {
            int pattern = root.path("sliding_window_pattern").asInt(6);
            for (int l = 0; l < layers; l++) {
                out.add((l + 1) % pattern != 0);
            }
            return List.copyOf(out);
        }
        for (int l = 0; l < layers; l++) {
            out.add(window > 0);
        }
        return List.copyOf(out);
    }

    private static RopeScaling readRopeScaling(Path file, JsonNode node, int maxPositions) {
        if (node == null || node.isNull()) {
            return null;
        }
        String type = node.hasNonNull("rope_type") ? node.get("rope_type").asText() : node.path("type").asText("default");
        double factor = node.path("factor").asDouble(1.0);
        return switch (type) {
            case "default" -> null;
            case "linear" -> new RopeScaling(type, factor, 0, 0, 0);
            case "llama3" -> {
                for (String f : List.of("factor", "low_freq_factor", "high_freq_factor")) {
                    if (!node.hasNonNull(f)) {
                        throw new ModelLoadException(file, "rope scaling of type llama3 needs '" + f + "'");
                    }
                }
                // HF falls back to max_position_embeddings when original_max_position_embeddings is absent
                yield new RopeScaling(type, factor, node.get("low_freq_factor").asDouble(),
                        node.get("high_freq_factor").asDouble(),
                        node.path("original_max_position_embeddings").asInt(maxPositions));
            }
            default -> throw new ModelLoadException(file, "rope scaling type '" + type
                    + "' is not supported (supported: default, linear, llama3)");
        };
    }

    /** Field access with errors that name the file and the field. */
    private record Reader(Path file, JsonNode root) {
        String string(String field) {
            JsonNode n = root.get(field);
            if (n == null || !n.isTextual()) {
                throw new ModelLoadException(file, "field '" + field + "' is missing or not a string");
            }
            return n.asText();
        }

        int positiveInt(String field) {
            JsonNode n = root.get(field);
            if (n == null || !n.canConvertToInt() || n.asInt() <= 0) {
                throw new ModelLoadException(file, "field '" + field + "' is missing or not a positive integer");
            }
            return n.asInt();
        }

        List<Integer> ids(String field) {
            JsonNode n = root.get(field);
            List<Integer> out = new ArrayList<>();
            if (n == null || n.isNull()) {
                return out;
            }
            if (n.isArray()) {
                n.forEach(e -> out.add(e.asInt()));
            } else if (n.canConvertToInt()) {
                out.add(n.asInt());
            } else {
                throw new ModelLoadException(file, "field '" + field + "' must be an integer or a list of integers");
            }
            return out;
        }
    }
}
