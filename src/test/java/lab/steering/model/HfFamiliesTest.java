package lab.steering.model;

import static lab.steering.model.GoldenTest.JSON;
import static lab.steering.model.GoldenTest.doubles;
import static lab.steering.model.GoldenTest.greedyIds;
import static lab.steering.model.GoldenTest.longs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.testing.ReferenceDecoder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every family against Hugging Face transformers itself: tiny random checkpoints made and saved by transformers
 * (src/test/resources/checkpoints/hf-*), with logits and greedy ids recorded by its own modeling code
 * (src/test/resources/reference/hf-*.json, written by scripts/reference/hf_families.py). The folders are loaded
 * through the app's normal {@link LanguageModel#load} path, config.json in transformers 5's format included.
 *
 * <p>Each family's checkpoint holds the features that distinguish it (sliding windows shorter than the prompts,
 * Gemma 3's local/global layers and query_pre_attn_scalar, Qwen2's biases, Phi-3's fused weights, GPT-2's Conv1D,
 * ...: the fixture's "features" field). Logits (full vocabulary at 7-10 positions per prompt, |logit| <= 5.7):
 * |diff| <= 1e-4 absolute (HF float32 vs DJL float32; observed <= 4.4e-6), while the misreadings listed in each
 * fixture's "sensitivity" field move them by 1.1e-3 (GELU exact instead of tanh) to 4.8; greedy ids (DJL: cached
 * incremental decoding, past the windows) must be equal. The plain-Java float64 {@link ReferenceDecoder}, the
 * oracle of FamiliesTest, is held to the same numbers (observed <= 4.0e-6), so it is checked too.
 */
class HfFamiliesTest {

    static JsonNode fixture(String family) throws IOException {
        return JSON.readTree(Path.of("src/test/resources/reference/hf-" + family + ".json").toFile());
    }

    static Path folder(String family) {
        return Path.of("src/test/resources/checkpoints/hf-" + family);
    }

    /** Asserts max |diff| <= 1e-4 (absolute; the logits here are at most ~6 in size) and returns it. */
    static double checkLogits(double[] want, double[] got, String what) {
        assertEquals(want.length, got.length, what + ": vocabulary size");
        double maxDiff = 0;
        for (int i = 0; i < want.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
        }
        assertEquals(0, maxDiff, 1e-4, what + ": max |diff| " + maxDiff);
        return maxDiff;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"mistral", "qwen2", "qwen3", "olmo2", "gemma3", "phi3", "gpt2"})
    void djlModelMatchesTransformers(String family) throws IOException {
        JsonNode fx = fixture(family);
        double worst = 0;
        try (LanguageModel m = LanguageModel.load(folder(family), Device.cpu())) {
            assertEquals(fx.get("modelType").asText(), m.config().modelType());
            for (JsonNode c : fx.get("cases")) {
                long[] prompt = longs(c.get("prompt"));
                double[][] got = Generator.allLogits(m, prompt, Hooks.NONE);
                for (int i = 0; i < c.get("positions").size(); i++) {
                    int p = c.get("positions").get(i).asInt();
                    worst = Math.max(worst, checkLogits(doubles(c.get("logits").get(i)), got[p],
                            family + " prompt length " + prompt.length + " position " + p));
                }
                assertArrayEquals(longs(c.get("greedy")), greedyIds(m, prompt, c.get("greedy").size()),
                        family + " greedy ids after prompt length " + prompt.length);
            }
        }
        System.out.printf("[hf] %s DJL float32 vs transformers: max |logit diff| %.3e, greedy ids equal%n", family, worst);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"mistral", "qwen2", "qwen3", "olmo2", "gemma3", "phi3", "gpt2"})
    void float64ReferenceMatchesTransformers(String family) throws IOException {
        JsonNode fx = fixture(family);
        ReferenceDecoder ref = ReferenceDecoder.load(folder(family));
        double worst = 0;
        for (JsonNode c : fx.get("cases")) {
            int[] prompt = Arrays.stream(longs(c.get("prompt"))).mapToInt(x -> (int) x).toArray();
            double[][] want = ref.logits(prompt);
            for (int i = 0; i < c.get("positions").size(); i++) {
                int p = c.get("positions").get(i).asInt();
                worst = Math.max(worst, checkLogits(doubles(c.get("logits").get(i)), want[p],
                        family + " reference, prompt length " + prompt.length + " position " + p));
            }
            long[] greedy = Arrays.stream(ref.greedy(prompt, c.get("greedy").size())).mapToLong(x -> x).toArray();
            assertArrayEquals(longs(c.get("greedy")), greedy, family + " reference greedy ids");
        }
        System.out.printf("[hf] %s ReferenceDecoder float64 vs transformers: max |logit diff| %.3e, greedy ids equal%n",
                family, worst);
    }

    /**
     * transformers 5 writes Phi-3's partial_rotary_factor inside rope_parameters (HF then rotates only the first
     * head_dim x factor dimensions of each head); the loader used to look for it only at the top level and ran such
     * a model with full RoPE. Now it is refused with an error naming the field.
     */
    @Test
    void partialRotaryFactorInsideRopeParametersIsRefused(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("phi3-partial");
        Files.createDirectories(dir);
        try (var files = Files.list(folder("phi3"))) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName().toString()));
            }
        }
        ObjectNode cfg = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        ((ObjectNode) cfg.get("rope_parameters")).put("partial_rotary_factor", 0.75);
        JSON.writeValue(dir.resolve("config.json").toFile(), cfg);
        var e = assertThrows(ModelLoadException.class, () -> LanguageModel.load(dir, Device.cpu()));
        assertTrue(e.getMessage().contains("partial_rotary_factor=0.75 is not supported"), e.getMessage());
    }

    /**
     * A config.json may lack fields that transformers then fills with its per-family defaults (recorded by the
     * script: the folder's config.json with the fixture's "configDefaults.removed" fields deleted, read by HF). The
     * loader must fill them in the same way: RMSNorm eps 1e-5 for OLMo 2 and Phi-3, a 4096 window for Mistral and
     * Gemma 3 when sliding_window is absent (not null), Gemma 3's global RoPE base 1e6 and query_pre_attn_scalar
     * 256, GPT-2's 1024 positions.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"mistral", "qwen2", "qwen3", "olmo2", "gemma3", "phi3", "gpt2"})
    void absentFieldsGetTransformersDefaults(String family, @TempDir Path tmp) throws IOException {
        JsonNode want = fixture(family).get("configDefaults");
        ObjectNode cfg = (ObjectNode) JSON.readTree(folder(family).resolve("config.json").toFile());
        want.get("removed").forEach(f -> cfg.remove(f.asText()));
        JSON.writeValue(tmp.resolve("config.json").toFile(), cfg);
        ModelConfig c = ModelConfig.read(tmp);
        String what = family + " without " + want.get("removed");
        assertEquals(want.get("eps").asDouble(), c.rmsNormEps(), 0, what + ": norm eps");
        assertEquals(want.get("tied").asBoolean(), c.tieWordEmbeddings(), what + ": tie_word_embeddings");
        assertEquals(want.get("attentionScale").asDouble(), c.attentionScale(), 1e-15, what + ": attention scale");
        if (family.equals("gpt2")) {
            assertEquals(want.get("maxPositions").asInt(), c.maxPositions(), what + ": n_positions");
            return;
        }
        assertEquals(want.get("slidingWindow").asInt(), c.slidingWindow(), what + ": sliding window");
        List<Boolean> sliding = new ArrayList<>();
        want.get("slidingLayers").forEach(b -> sliding.add(b.asBoolean()));
        assertEquals(sliding, c.slidingLayers(), what + ": sliding layers");
        assertEquals(want.get("ropeTheta").asDouble(), c.ropeTheta(), 0, what + ": rope theta");
        assertEquals(want.get("localRopeTheta").asDouble(), c.localRopeTheta(), 0, what + ": local rope theta");
    }
}
