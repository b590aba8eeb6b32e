package lab.steering.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import lab.steering.TestModels;
import lab.steering.model.LanguageModel;
import lab.steering.model.SafetensorsReader;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PublisherTest {

    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void engine() {
        Trainer.setUpEngine(2);
    }

    /**
     * A tiny finished run is published as a Hugging Face folder: Llama config fields, BF16 safetensors without
     * lm_head (tied), tokenizer, generation config, card; it loads through LanguageModel.load, and the BF16
     * perplexity stays close to the float32 one.
     */
    @Test
    void publishesALoadableHuggingFaceFolder(@TempDir Path run, @TempDir Path models) throws Exception {
        TrainingConfig cfg = TrainerTest.TINY.with(Map.of("steps", "40", "eval-every", "20"));
        TokenData.Tokens data = TrainerTest.repeated();
        new Trainer(cfg, data, run, Trainer.Options.quiet()).run();
        // what TokenData would have left in the run folder
        Path tok = Files.createDirectories(run.resolve(TokenData.TOKENIZER_DIR));
        Files.writeString(tok.resolve("tokenizer.json"), TestModels.wordLevelTokenizer(16));
        TokenData.writeInts(run.resolve(TokenData.TRAIN), data.train());
        TokenData.writeInts(run.resolve(TokenData.VALID), data.valid());
        Files.writeString(run.resolve(TokenData.META), "{\"trainTokens\": " + data.train().length + ", \"validTokens\": "
                + data.valid().length + ", \"bos\": 0, \"eos\": 1, \"vocabSize\": 16, \"trainText\": \"" + run.resolve("none.txt") + "\"}");
        JSON.writeValue(run.resolve("baselines.json").toFile(),
                NgramBaseline.report(data.train(), data.valid(), 16));

        Path out = Publisher.publish(run, models, "tiny", null, 25L * 1024 * 1024, false);

        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json",
                "README.md", "evaluation.json"}) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        assertFalse(Files.exists(models.resolve(".tiny.tmp")));
        JsonNode c = JSON.readTree(out.resolve("config.json").toFile());
        assertEquals("llama", c.get("model_type").asText());
        assertEquals("LlamaForCausalLM", c.get("architectures").get(0).asText());
        assertEquals(32, c.get("hidden_size").asInt());
        assertEquals(8, c.get("head_dim").asInt());
        assertTrue(c.get("tie_word_embeddings").asBoolean());
        assertTrue(c.get("rope_scaling").isNull());
        assertEquals("bfloat16", c.get("torch_dtype").asText());
        try (SafetensorsReader r = SafetensorsReader.open(out)) {
            assertFalse(r.contains("lm_head.weight"));
            assertEquals("BF16", r.info("model.embed_tokens.weight").dtype());
            assertEquals(1 + 2 * 9 + 1, r.names().size());
        }
        try (LanguageModel lm = LanguageModel.load(out, Device.cpu())) {
            assertEquals(16, lm.config().vocabSize());
        }
        JsonNode e = JSON.readTree(out.resolve("evaluation.json").toFile());
        assertEquals(data.valid().length - 1, e.get("validTokensPredicted").asInt());
        assertEquals(e.get("validLossF32").asDouble(), e.get("validLossBf16").asDouble(), 0.05);
        assertTrue(e.get("ratioModelToBigram").asDouble() > 0);
        String card = Files.readString(out.resolve("README.md"));
        assertTrue(card.contains("## Validation") && card.contains("### Greedy") && card.contains("### Sampled"));
        assertEquals(10, card.lines().filter(l -> l.startsWith("- **")).count() / 2);
    }

    /**
     * A new phase can start from a published folder (--init-from): one step at a tiny learning rate from the
     * published weights has about the trained model's loss, far below one step from a random initialisation; a
     * folder of another shape is refused, naming the tensor.
     */
    @Test
    void aNewRunCanStartFromAPublishedModel(@TempDir Path run, @TempDir Path models, @TempDir Path warm,
                                            @TempDir Path cold) throws Exception {
        TrainingConfig cfg = TrainerTest.TINY.with(Map.of("steps", "40", "eval-every", "20"));
        TokenData.Tokens data = TrainerTest.repeated();
        Trainer.Result trained = new Trainer(cfg, data, run, Trainer.Options.quiet()).run();
        Files.writeString(Files.createDirectories(run.resolve(TokenData.TOKENIZER_DIR)).resolve("tokenizer.json"),
                TestModels.wordLevelTokenizer(16));
        Files.writeString(run.resolve(TokenData.META), "{\"trainTokens\": " + data.train().length
                + ", \"validTokens\": " + data.valid().length + ", \"bos\": 0, \"eos\": 1, \"vocabSize\": 16,"
                + " \"trainText\": \"" + run.resolve("none.txt") + "\"}");
        TokenData.writeInts(run.resolve(TokenData.TRAIN), data.train());
        TokenData.writeInts(run.resolve(TokenData.VALID), data.valid());
        Path out = Publisher.publish(run, models, "tiny", null, 25L * 1024 * 1024, false);

        TrainingConfig oneStep = TrainerTest.TINY.with(Map.of("steps", "1", "warmup", "1", "peak-lr", "1e-6",
                "eval-every", "1000"));
        Trainer w = new Trainer(oneStep, data, warm, Trainer.Options.quiet());
        w.initFrom = out;
        double warmLoss = w.run().lastTrainLoss();
        double coldLoss = new Trainer(oneStep, data, cold, Trainer.Options.quiet()).run().lastTrainLoss();
        // the trained model ends near 0.2 nats (its last steps); a random one starts near ln 16 = 2.77
        assertTrue(trained.lastTrainLoss() < 0.5, "the tiny run learned: " + trained.lastTrainLoss());
        assertTrue(warmLoss < 0.5, "warm start " + warmLoss + ", trained " + trained.lastTrainLoss());
        assertTrue(coldLoss > 2, "random start " + coldLoss);

        TrainingConfig wider = oneStep.with(Map.of("hidden", "48"));
        Trainer bad = new Trainer(wider, data, run.resolve("bad"), Trainer.Options.quiet());
        bad.initFrom = out;
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                bad::run);
        assertTrue(e.getMessage().contains("model.embed_tokens.weight has shape [16, 32]"), e.getMessage());
    }

    @Test
    void numbersAreWrittenPlainly() {
        assertEquals("0.0015", Publisher.num(1.5e-3));
        assertEquals("0.0003", Publisher.num(1.5e-3 * 0.2));
        assertEquals("1e-8", Publisher.num(1e-8));
        assertEquals("0.95", Publisher.num(0.95));
    }
}
