package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * On the default model, an operator built from a scripture concept moves the greedy continuations of unrelated
 * everyday prompts toward the concept. Documented setting: the default split layer 4 (2L/3 of 6), strength 1 (the
 * third model, session 8; the second one was tested at layer 2 and strength 1.5, where this one lowers the score of
 * one prompt). Concept score = mean over generated steps of log P(next token is one of the concept's tokens)
 * (SteeredRun); higher = closer.
 */
class DefaultModelSteeringTest {

    static final String CONCEPT = "And the LORD spake unto Moses, saying";
    static final String[] PROMPTS = {"The weather today is", "I went to the market and", "She opened the door and saw",
            "My father told me that"};

    @Test
    void conceptOperatorRaisesTheConceptScoreAndStrengthZeroIsUnsteered() {
        Path folder = Path.of("models", "steering-lab-base");
        Assumptions.assumeTrue(Files.isRegularFile(folder.resolve("config.json")),
                "skipped: models/steering-lab-base is not published yet");
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            long[] concept = m.tokenizer().encode(CONCEPT);
            int layer = 4;
            double strength = 1.0;
            SteeringOperator op = OperatorBuilder.full(m, concept, layer, m.dataType(), r -> { });
            GenerationParams greedy = GenerationParams.greedy(32);
            for (String prompt : PROMPTS) {
                long[] ids = m.tokenizer().encode(prompt);
                SteeredRun.Result base = SteeredRun.run(m, ids, greedy, null, concept, 0);
                SteeredRun.Result zero = SteeredRun.run(m, ids, greedy, nd -> new Injector(op, 0, nd, m.dataType()),
                        concept, 0);
                SteeredRun.Result steered = SteeredRun.run(m, ids, greedy,
                        nd -> new Injector(op, strength, nd, m.dataType()), concept, 0);
                assertArrayEquals(ids(base), ids(zero), "strength 0 must give the unsteered text for '" + prompt + "'");
                System.out.printf("'%s': concept score %.3f -> %.3f (perplexity %.1f)%n  %s%n", prompt,
                        base.conceptScore(), steered.conceptScore(), steered.perplexity(),
                        steered.generation().completion().replace("\n", " / "));
                assertTrue(steered.conceptScore() > base.conceptScore(), "concept score must rise for '" + prompt
                        + "': " + base.conceptScore() + " -> " + steered.conceptScore());
            }
        }
    }

    static long[] ids(SteeredRun.Result r) {
        return r.generation().tokens().stream().mapToLong(t -> t.id()).toArray();
    }
}
