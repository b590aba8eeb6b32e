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

    private TinyCheckpoint() {
    }

    public static TinyCheckpoint llama() {
        return new TinyCheckpoint();
    }

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
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("model_type", "llama");
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
        if (llama3 == null) {
            c.putNull("rope_scaling");
        } else {
            ObjectNode r = c.putObject("rope_scaling");
            r.put("rope_type", "llama3");
            r.put("factor", llama3[0]);
            r.put("low_freq_factor", llama3[1]);
            r.put("high_freq_factor", llama3[2]);
            r.put("original_max_position_embeddings", (int) llama3[3]);
        }
        c.put("tie_word_embeddings", tied);
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        c.put("torch_dtype", switch (dtype) {
            case "F16" -> "float16";
            case "BF16" -> "bfloat16";
            default -> "float32";
        });
        c.put("hidden_act", "silu");
        c.put("attention_bias", false);
        c.put("mlp_bias", false);
        json.writeValue(dir.resolve("config.json").toFile(), c);
    }

    private void writeWeights(Path dir) throws IOException {
        int hd = headDim != null ? headDim : hidden / heads;
        Random rnd = new Random(seed);
        List<Object[]> tensors = new ArrayList<>(); // {name, long[] shape, double[] values}, HF's names
        tensors.add(gaussian(rnd, "model.embed_tokens.weight", vocab, hidden));
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            tensors.add(norm(rnd, p + "input_layernorm.weight"));
            tensors.add(gaussian(rnd, p + "self_attn.q_proj.weight", heads * hd, hidden));
            tensors.add(gaussian(rnd, p + "self_attn.k_proj.weight", kvHeads * hd, hidden));
            tensors.add(gaussian(rnd, p + "self_attn.v_proj.weight", kvHeads * hd, hidden));
            tensors.add(gaussian(rnd, p + "self_attn.o_proj.weight", hidden, heads * hd));
            tensors.add(norm(rnd, p + "post_attention_layernorm.weight"));
            tensors.add(gaussian(rnd, p + "mlp.gate_proj.weight", intermediate, hidden));
            tensors.add(gaussian(rnd, p + "mlp.up_proj.weight", intermediate, hidden));
            tensors.add(gaussian(rnd, p + "mlp.down_proj.weight", hidden, intermediate));
        }
        tensors.add(norm(rnd, "model.norm.weight"));
        if (!tied) {
            tensors.add(gaussian(rnd, "lm_head.weight", vocab, hidden));
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

    private Object[] norm(Random rnd, String name) {
        double[] v = new double[hidden];
        for (int i = 0; i < v.length; i++) {
            v[i] = 1 + 0.05 * rnd.nextGaussian();
        }
        return new Object[] {name, new long[] {hidden}, v};
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
