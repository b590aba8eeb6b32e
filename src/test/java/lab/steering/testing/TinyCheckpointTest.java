package lab.steering.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * TinyCheckpoint writes folders that ReferenceLlama (and so Hugging Face's layout) reads back.
 *
 * <p>Tolerances between dtype variants of the same seed: every weight is the same double rounded once to the
 * dtype, relative error at most 2^-11 = 4.9e-4 (F16) or 2^-8 = 3.9e-3 (BF16), independent across weights.
 * Through 2 layers these partly average out; observed 6.2e-4 (F16) and 8.1e-3 (BF16) relative to the logit
 * scale (seed 42). Bounds: 1e-2 for F16, 5e-2 for BF16 (relative to max(1, max|logit|)), and greater than zero, so a
 * variant that silently reads as F32-identical (dtype ignored) or as garbage (wrong decode) both fail.
 * Sharding does not change any value: sharded and single-file logits must be bit-identical.
 */
class TinyCheckpointTest {

    @TempDir
    Path tmp;

    static final int[] PROMPT = {1, 17, 5, 42, 9, 63, 30, 8, 2, 11};
    private static final ObjectMapper JSON = new ObjectMapper();

    static TinyCheckpoint base() {
        return TinyCheckpoint.llama().hidden(32).layers(2).heads(4).kvHeads(2).intermediate(48).vocab(64)
                .maxPositions(128).tied(true).ropeTheta(10000).seed(42);
    }

    static double[] flat(double[][] m) {
        return java.util.Arrays.stream(m).flatMapToDouble(java.util.Arrays::stream).toArray();
    }

    /** max |a - b| / max(1, max |a|). */
    static double relDiff(double[] a, double[] b) {
        double d = 0;
        double scale = 1;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
            scale = Math.max(scale, Math.abs(a[i]));
        }
        return d / scale;
    }

    @Test
    void writtenFolderIsReadBackWithFiniteLogits() throws IOException {
        Path dir = base().writeTo(tmp.resolve("f32"));
        ReferenceLlama model = ReferenceLlama.load(dir);
        assertEquals(32, model.hiddenSize());
        assertEquals(2, model.layers());
        assertEquals(4, model.heads());
        assertEquals(2, model.kvHeads());
        assertEquals(8, model.headDim());
        assertEquals(48, model.intermediateSize());
        assertEquals(64, model.vocabSize());
        assertEquals(128, model.maxPositions());
        assertTrue(model.tiedEmbeddings());
        assertEquals("default", model.ropeType());

        double[][] logits = model.logits(PROMPT);
        assertEquals(PROMPT.length, logits.length);
        double max = 0;
        double min = 0;
        for (double[] row : logits) {
            assertEquals(64, row.length);
            for (double v : row) {
                assertTrue(Double.isFinite(v));
                max = Math.max(max, v);
                min = Math.min(min, v);
            }
        }
        assertTrue(max - min > 0.5 && max - min < 50, "logit spread " + (max - min) + " degenerate");
        int[] greedy = model.greedy(PROMPT, 8);
        assertEquals(8, greedy.length);
        assertArrayEquals(greedy, ReferenceLlama.load(dir).greedy(PROMPT, 8), "deterministic");

        // last-position helper is the last row of the all-positions logits
        assertArrayEquals(logits[PROMPT.length - 1], model.lastLogits(PROMPT), 0.0);
        // causal: a prefix's logits equal the longer prompt's first rows
        assertArrayEquals(logits[3], model.lastLogits(java.util.Arrays.copyOf(PROMPT, 4)), 0.0);
    }

    @Test
    void writesHuggingFaceNamesAndConfigFields() throws IOException {
        Path dir = base().tied(false).headDim(16).llama3RopeScaling(8, 1, 4, 32).dtype("BF16").writeTo(tmp.resolve("c"));
        JsonNode c = JSON.readTree(dir.resolve("config.json").toFile());
        assertEquals("LlamaForCausalLM", c.get("architectures").get(0).asText());
        assertEquals("llama", c.get("model_type").asText());
        assertEquals(16, c.get("head_dim").asInt());
        assertEquals("bfloat16", c.get("torch_dtype").asText());
        assertEquals("silu", c.get("hidden_act").asText());
        assertEquals(1, c.get("bos_token_id").asInt());
        assertEquals(2, c.get("eos_token_id").asInt());
        assertFalse(c.get("tie_word_embeddings").asBoolean());
        assertFalse(c.get("attention_bias").asBoolean());
        assertFalse(c.get("mlp_bias").asBoolean());
        assertEquals("llama3", c.get("rope_scaling").get("rope_type").asText());
        assertEquals(32, c.get("rope_scaling").get("original_max_position_embeddings").asInt());
        for (String f : List.of("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta")) {
            assertTrue(c.hasNonNull(f), f);
        }

        Map<String, SafetensorsTestReader.Tensor> w = SafetensorsTestReader.readFolder(dir);
        TreeSet<String> expected = new TreeSet<>(List.of("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"));
        for (int l = 0; l < 2; l++) {
            for (String s : List.of("input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                    "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")) {
                expected.add("model.layers." + l + "." + s + ".weight");
            }
        }
        assertEquals(expected, new TreeSet<>(w.keySet()));
        assertArrayEquals(new long[] {64, 32}, w.get("model.layers.0.self_attn.q_proj.weight").shape()); // 4 x 16
        assertArrayEquals(new long[] {32, 32}, w.get("model.layers.0.self_attn.k_proj.weight").shape()); // 2 x 16
        assertArrayEquals(new long[] {32, 64}, w.get("model.layers.0.self_attn.o_proj.weight").shape());
        assertEquals("BF16", w.get("model.norm.weight").dtype());

        // head_dim 16 != hidden/heads 8 is honoured, and the folder runs
        ReferenceLlama model = ReferenceLlama.load(dir);
        assertEquals(16, model.headDim());
        assertTrue(java.util.Arrays.stream(model.lastLogits(PROMPT)).allMatch(Double::isFinite));

        // safetensors layout: 8-byte little-endian length, header padded to a multiple of 8
        byte[] bytes = Files.readAllBytes(dir.resolve("model.safetensors"));
        long headerLen = java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + headerLen) % 8);
        assertTrue(JSON.readTree(new String(bytes, 8, (int) headerLen, java.nio.charset.StandardCharsets.UTF_8))
                .get("__metadata__").has("format"));
    }

    @Test
    void tokenizerJsonHasTheFormOfStories260K() throws IOException {
        Path dir = base().writeTo(tmp.resolve("t"));
        JsonNode tok = JSON.readTree(dir.resolve("tokenizer.json").toFile());
        assertEquals("WordLevel", tok.get("model").get("type").asText());
        assertEquals("t0", tok.get("model").get("unk_token").asText());
        assertEquals("WhitespaceSplit", tok.get("pre_tokenizer").get("type").asText());
        assertTrue(tok.get("post_processor").isNull());
        assertEquals(64, tok.get("model").get("vocab").size());
        assertEquals(63, tok.get("model").get("vocab").get("t63").asInt());

        Path stories = ReferenceLlamaTest.STORIES.resolve("tokenizer.json");
        Assumptions.assumeTrue(Files.isRegularFile(stories), "stories260K absent: byte comparison skipped");
        assertEquals(Files.readString(stories), TinyCheckpoint.tokenizerJson(512), "same bytes as stories260K's");
    }

    @Test
    void f16Bf16AndShardedVariantsAgreeWithF32() throws IOException {
        TinyCheckpoint spec = base().tied(false).llama3RopeScaling(8, 1, 4, 32);
        double[] f32 = flat(ReferenceLlama.load(spec.dtype("F32").sharded(false).writeTo(tmp.resolve("f32"))).logits(PROMPT));
        double[] f32Sharded = flat(ReferenceLlama.load(spec.dtype("F32").sharded(true).writeTo(tmp.resolve("f32s"))).logits(PROMPT));
        double[] f16 = flat(ReferenceLlama.load(spec.dtype("F16").sharded(false).writeTo(tmp.resolve("f16"))).logits(PROMPT));
        double[] bf16Sharded = flat(ReferenceLlama.load(spec.dtype("BF16").sharded(true).writeTo(tmp.resolve("bf16s"))).logits(PROMPT));

        assertTrue(Files.exists(tmp.resolve("f32s/model-00001-of-00002.safetensors")));
        assertTrue(Files.exists(tmp.resolve("f32s/model-00002-of-00002.safetensors")));
        assertFalse(Files.exists(tmp.resolve("f32s/model.safetensors")));
        JsonNode index = JSON.readTree(tmp.resolve("f32s/model.safetensors.index.json").toFile());
        assertEquals("model-00002-of-00002.safetensors", index.get("weight_map").get("lm_head.weight").asText());
        assertEquals("model-00001-of-00002.safetensors", index.get("weight_map").get("model.embed_tokens.weight").asText());
        assertTrue(index.get("metadata").get("total_size").asLong() > 0);

        assertArrayEquals(f32, f32Sharded, 0.0, "sharding must not change a value");
        double dF16 = relDiff(f32, f16);
        double dBf16 = relDiff(f32, bf16Sharded);
        System.out.printf("[reference] TinyCheckpoint vs F32: F16 %.3e, BF16 (sharded) %.3e relative%n", dF16, dBf16);
        assertTrue(dF16 > 0 && dF16 < 1e-2, "F16 " + dF16);
        assertTrue(dBf16 > dF16 && dBf16 < 5e-2, "BF16 " + dBf16);
    }

    @Test
    void llama3ScalingChangesLogitsAndBothKeySpellingsAgree() throws IOException {
        Path plain = base().writeTo(tmp.resolve("plain"));
        Path scaled = base().llama3RopeScaling(8, 1, 4, 32).writeTo(tmp.resolve("scaled"));
        double[] a = flat(ReferenceLlama.load(plain).logits(PROMPT));
        double[] b = flat(ReferenceLlama.load(scaled).logits(PROMPT));
        assertTrue(relDiff(a, b) > 1e-3, "llama3 scaling had no effect: " + relDiff(a, b));

        // older configs spell it "type" instead of "rope_type"; transformers 5 writes rope_parameters
        ObjectNode cfg = (ObjectNode) JSON.readTree(scaled.resolve("config.json").toFile());
        ObjectNode rs = (ObjectNode) cfg.get("rope_scaling");
        rs.put("type", rs.remove("rope_type").asText());
        JSON.writeValue(scaled.resolve("config.json").toFile(), cfg);
        assertArrayEquals(b, flat(ReferenceLlama.load(scaled).logits(PROMPT)), 0.0, "\"type\" spelling");

        ObjectNode params = cfg.putObject("rope_parameters");
        params.setAll((ObjectNode) cfg.remove("rope_scaling"));
        params.put("rope_type", params.remove("type").asText());
        params.put("rope_theta", cfg.remove("rope_theta").asDouble());
        JSON.writeValue(scaled.resolve("config.json").toFile(), cfg);
        ReferenceLlama v5 = ReferenceLlama.load(scaled);
        assertEquals("llama3", v5.ropeType());
        assertArrayEquals(b, flat(v5.logits(PROMPT)), 0.0, "transformers 5 rope_parameters spelling");
    }

    @Test
    void halfPrecisionEncodingsRoundToNearestEven() throws IOException {
        // known IEEE binary16 / bfloat16 bit patterns
        assertEquals((short) 0x3c00, SafetensorsTestWriter.toF16Bits(1.0));
        assertEquals((short) 0xc000, SafetensorsTestWriter.toF16Bits(-2.0));
        assertEquals((short) 0x3555, SafetensorsTestWriter.toF16Bits(1.0 / 3));
        assertEquals((short) 0x7bff, SafetensorsTestWriter.toF16Bits(65504));
        assertEquals((short) 0x7c00, SafetensorsTestWriter.toF16Bits(65520));   // halfway to 65536: to even = inf
        assertEquals((short) 0x0001, SafetensorsTestWriter.toF16Bits(0x1p-24)); // smallest subnormal
        assertEquals((short) 0x0400, SafetensorsTestWriter.toF16Bits(0x1p-14)); // smallest normal
        assertEquals((short) 0x3c00, SafetensorsTestWriter.toF16Bits(1 + 0x1p-11)); // tie -> even (down)
        assertEquals((short) 0x3c02, SafetensorsTestWriter.toF16Bits(1 + 3 * 0x1p-11)); // tie -> even (up)
        assertEquals((short) 0x3f80, SafetensorsTestWriter.toBf16Bits(1.0));
        assertEquals((short) 0x3eab, SafetensorsTestWriter.toBf16Bits(1.0 / 3));
        assertEquals((short) 0x3f80, SafetensorsTestWriter.toBf16Bits(1 + 0x1p-8));  // tie -> even (down)
        assertEquals((short) 0x3f82, SafetensorsTestWriter.toBf16Bits(1 + 3 * 0x1p-8)); // tie -> even (up)
        assertEquals(0.333251953125, SafetensorsTestReader.f16ToDouble((short) 0x3555));
        assertEquals(0x1p-24, SafetensorsTestReader.f16ToDouble((short) 0x0001));
        assertEquals(-65504.0, SafetensorsTestReader.f16ToDouble((short) 0xfbff));
        assertEquals(0.333984375, SafetensorsTestReader.bf16ToDouble((short) 0x3eab));

        double[] values = {0, -0.0, 1, -1.5, 1.0 / 3, 1e-6, -7.25e-5, 123.456, 3e-8};
        for (String dtype : List.of("F32", "F16", "BF16")) {
            Path file = tmp.resolve(dtype + ".safetensors");
            new SafetensorsTestWriter(dtype).add("a", new long[] {3, 3}, values).add("b", new long[] {1}, new double[] {2})
                    .write(file);
            Map<String, SafetensorsTestReader.Tensor> read = SafetensorsTestReader.readFile(file);
            assertArrayEquals(new long[] {3, 3}, read.get("a").shape());
            assertEquals(dtype, read.get("a").dtype());
            assertEquals(2.0, read.get("b").data()[0]);
            double rel = switch (dtype) { case "F32" -> 0x1p-24; case "F16" -> 0x1p-11; default -> 0x1p-8; };
            for (int i = 0; i < values.length; i++) {
                double got = read.get("a").data()[i];
                double bound = Math.max(rel * Math.abs(values[i]), dtype.equals("F16") ? 0x1p-25 : 0);
                assertTrue(Math.abs(got - values[i]) <= bound, dtype + " " + values[i] + " -> " + got);
            }
            byte[] bytes = Files.readAllBytes(file);
            long headerLen = java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
            assertEquals(0, (8 + headerLen) % 8, "data must start 8-byte aligned");
            assertEquals(8 + headerLen + 10L * SafetensorsTestWriter.bytesPerElement(dtype), bytes.length);
        }
    }

    /**
     * Not a unit test: with -Dreference.crosscheck.dir=DIR it writes TinyCheckpoint variants and ReferenceLlama's
     * logits there, for scripts/reference/crosscheck_tiny_checkpoint.py to load with Hugging Face and compare.
     */
    @Test
    void writeFoldersForHuggingFaceCrossCheck() throws IOException {
        String out = System.getProperty("reference.crosscheck.dir");
        Assumptions.assumeTrue(out != null, "set -Dreference.crosscheck.dir=DIR to write HF cross-check folders");
        Map<String, TinyCheckpoint> variants = Map.of(
                "tied-f32", base(),
                "untied-headdim16-llama3-bf16-sharded",
                base().tied(false).headDim(16).llama3RopeScaling(8, 1, 4, 16).dtype("BF16").sharded(true),
                "f16-mha", base().kvHeads(4).dtype("F16").ropeTheta(500000));
        List<String> names = new ArrayList<>(new TreeSet<>(variants.keySet()));
        for (String name : names) {
            Path dir = variants.get(name).writeTo(Path.of(out, name));
            ObjectNode fx = JSON.createObjectNode();
            fx.putPOJO("prompt", PROMPT);
            fx.putPOJO("logits", flat(ReferenceLlama.load(dir).logits(PROMPT)));
            fx.putPOJO("greedy", ReferenceLlama.load(dir).greedy(PROMPT, 8));
            JSON.writeValue(dir.resolve("reference-llama.json").toFile(), fx);
        }
    }
}
