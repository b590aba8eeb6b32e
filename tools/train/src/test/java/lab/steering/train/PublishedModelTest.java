package lab.steering.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import lab.steering.model.SafetensorsReader;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The committed default model (models/steering-lab-base), once published: skipped until it exists. */
class PublishedModelTest {

    static final Path DIR = Path.of("models", Publisher.DEFAULT_NAME);

    static Path require() {
        Assumptions.assumeTrue(Files.isRegularFile(DIR.resolve("config.json")), "skipped: " + DIR + " not published yet");
        return DIR;
    }

    @Test
    void isASmallBf16LlamaFolder() throws Exception {
        Path dir = require();
        assertTrue(Publisher.size(dir) <= 25L * 1024 * 1024, "at most 25 MB");
        JsonNode c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        assertEquals("llama", c.get("model_type").asText());
        assertEquals("bfloat16", c.get("torch_dtype").asText());
        assertTrue(c.get("tie_word_embeddings").asBoolean());
        for (String f : new String[] {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "README.md"}) {
            assertTrue(Files.isRegularFile(dir.resolve(f)), f);
        }
        try (SafetensorsReader r = SafetensorsReader.open(dir)) {
            assertFalse(r.contains("lm_head.weight"));
            r.names().forEach(n -> assertEquals("BF16", r.info(n).dtype(), n));
        }
    }

    @Test
    void beatsTheBigramWellAndLoadsLikeAnyModel() throws Exception {
        Path dir = require();
        JsonNode e = new ObjectMapper().readTree(dir.resolve("evaluation.json").toFile());
        assertTrue(e.get("ratioModelToBigram").asDouble() < 0.6,
                "model/bigram perplexity " + e.get("ratioModelToBigram").asDouble());
        try (LanguageModel lm = LanguageModel.load(dir.toAbsolutePath(), Device.cpu())) {
            long[] ids = lm.tokenizer().encode("The weather today is");
            assertEquals(0, ids[0], "BOS from the tokenizer's own rule");
            Generation g = Generator.generate(lm, ids, GenerationParams.greedy(8), Hooks.NONE);
            assertFalse(g.completion().isBlank());
        }
    }
}
