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
        String torchDtype) {

    /** Model types this build can run. */
    public static final Set<String> SUPPORTED_TYPES = Set.of("llama");

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

    /** Parameters excluding nothing: embeddings, every layer, final norm and an untied lm_head. */
    public long parameterCount() {
        long d = hiddenSize;
        long attn = d * numHeads * headDim * 2L + d * numKvHeads * headDim * 2L;
        long mlp = 3L * d * intermediateSize;
        long perLayer = attn + mlp + 2 * d;
        long embed = (long) vocabSize * d;
        return embed + numLayers * perLayer + d + (tieWordEmbeddings ? 0 : embed);
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads {@code config.json} (and the EOS ids of {@code generation_config.json} when present) from a model folder. */
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
        if (!SUPPORTED_TYPES.contains(type)) {
            throw new ModelLoadException(file, "model_type '" + type + "' is not supported (supported: "
                    + String.join(", ", SUPPORTED_TYPES.stream().sorted().toList()) + ")");
        }
        int d = r.positiveInt("hidden_size");
        int heads = r.positiveInt("num_attention_heads");
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
        if (headDim % 2 != 0) {
            throw new ModelLoadException(file, "head_dim " + headDim + " must be even for RoPE");
        }
        String act = root.path("hidden_act").asText("silu");
        if (!act.equals("silu")) {
            throw new ModelLoadException(file, "hidden_act '" + act + "' is not supported for " + type + " (supported: silu)");
        }
        for (String bias : List.of("attention_bias", "mlp_bias")) {
            if (root.path(bias).asBoolean(false)) {
                throw new ModelLoadException(file, bias + "=true is not supported for " + type);
            }
        }
        // transformers 5 writes rope_parameters {rope_type, rope_theta, ...}; older configs rope_theta + rope_scaling
        JsonNode ropeParams = root.get("rope_parameters");
        JsonNode ropeNode = ropeParams != null && !ropeParams.isNull() ? ropeParams : root.get("rope_scaling");
        int maxPositions = root.hasNonNull("max_position_embeddings") ? r.positiveInt("max_position_embeddings") : 2048;
        RopeScaling scaling = readRopeScaling(file, ropeNode, maxPositions);
        double ropeTheta = ropeParams != null && ropeParams.hasNonNull("rope_theta")
                ? ropeParams.get("rope_theta").asDouble() : root.path("rope_theta").asDouble(10000.0);
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
        return new ModelConfig(
                type,
                d,
                r.positiveInt("intermediate_size"),
                r.positiveInt("num_hidden_layers"),
                heads,
                kvHeads,
                headDim,
                r.positiveInt("vocab_size"),
                maxPositions,
                root.path("rms_norm_eps").asDouble(1e-6),
                ropeTheta,
                scaling,
                root.path("tie_word_embeddings").asBoolean(false),
                root.hasNonNull("bos_token_id") ? root.get("bos_token_id").asInt() : -1,
                List.copyOf(eos),
                root.hasNonNull("torch_dtype") ? root.get("torch_dtype").asText() : root.path("dtype").asText("float32"));
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
