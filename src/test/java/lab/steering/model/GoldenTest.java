package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import lab.steering.SharedModels;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.testing.ReferenceLlama;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The DJL model against two independent references: numbers recorded from Hugging Face transformers
 * (src/test/resources/reference, made by scripts/reference/hf_reference.py) and the plain-Java float64
 * {@link ReferenceLlama}.
 *
 * <p>Tolerance on logits: 1e-4 x max(1, max |logit|). The DJL pass runs in float32 (rounding ~6e-8 relative
 * per op, summed over a few hundred ops and dot products of length <= 172); the observed error is ~2e-6
 * relative, so the bound has 50x slack while still catching any real bug (a wrong RoPE pairing or GQA mapping
 * moves logits by whole units).
 */
class GoldenTest {

    static final ObjectMapper JSON = new ObjectMapper();

    static void assertLogitsClose(double[] want, double[] got, String what) {
        double scale = 1;
        for (double w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        double maxDiff = 0;
        for (int i = 0; i < want.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
        }
        assertEquals(0, maxDiff, 1e-4 * scale, what + ": max |diff| " + maxDiff);
    }

    static double[] doubles(JsonNode arr) {
        double[] out = new double[arr.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = arr.get(i).asDouble();
        }
        return out;
    }

    static long[] longs(JsonNode arr) {
        long[] out = new long[arr.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = arr.get(i).asLong();
        }
        return out;
    }

    static long[] greedyIds(LanguageModel m, long[] prompt, int n) {
        return Generator.generate(m, prompt, GenerationParams.greedy(n), Hooks.NONE, true, false, t -> { })
                .tokens().stream().mapToLong(t -> t.id()).toArray();
    }

    @Test
    void stories260KMatchesHuggingFaceLogitsAndGreedyTokens() throws IOException {
        Path folder = SharedModels.require(SharedModels.STORIES);
        JsonNode fixture = JSON.readTree(Path.of("src/test/resources/reference/hf-tinystories-llama.json").toFile());
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            for (JsonNode c : fixture.get("cases")) {
                long[] prompt = longs(c.get("prompt"));
                double[][] logits = Generator.allLogits(m, prompt, Hooks.NONE);
                assertLogitsClose(doubles(c.get("lastLogits")), logits[prompt.length - 1],
                        "HF last logits for " + Arrays.toString(prompt));
                assertArrayEquals(longs(c.get("greedy")), greedyIds(m, prompt, 32),
                        "HF greedy ids for " + Arrays.toString(prompt));
            }
        }
    }

    @Test
    void stories260KMatchesTheFloat64ReferenceOnLogitsAndThirtyTwoGreedyTokens() throws IOException {
        Path folder = SharedModels.require(SharedModels.STORIES_TEXT);
        ReferenceLlama ref = ReferenceLlama.load(folder);
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            for (String text : new String[] {"Once upon a time", "Lily and Ben went to the park. They saw a",
                    "The cat was sad because", "One day, a little bird"}) {
                long[] ids = m.tokenizer().encode(text);
                int[] intIds = Arrays.stream(ids).mapToInt(i -> (int) i).toArray();
                double[][] want = ref.logits(intIds);
                double[][] got = Generator.allLogits(m, ids, Hooks.NONE);
                for (int p = 0; p < ids.length; p++) {
                    assertLogitsClose(want[p], got[p], "'" + text + "' position " + p);
                }
                long[] refGreedy = Arrays.stream(ref.greedy(intIds, 32)).mapToLong(i -> i).toArray();
                assertArrayEquals(refGreedy, greedyIds(m, ids, 32), "greedy continuation of '" + text + "'");
            }
        }
    }

    @Test
    void defaultModelMatchesTheFloat64ReferenceOnLogitsAndGreedyTokens() throws IOException {
        Path folder = Path.of("models", "steering-lab-base");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(folder.resolve("config.json")),
                "skipped: the default model models/steering-lab-base is not published yet");
        ReferenceLlama ref = ReferenceLlama.load(folder);
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            long[] ids = m.tokenizer().encode("The weather today is");
            int[] intIds = Arrays.stream(ids).mapToInt(i -> (int) i).toArray();
            double[][] want = ref.logits(intIds);
            double[][] got = Generator.allLogits(m, ids, Hooks.NONE);
            for (int p = 0; p < ids.length; p++) {
                assertLogitsClose(want[p], got[p], "default model position " + p);
            }
            long[] refGreedy = Arrays.stream(ref.greedy(intIds, 24)).mapToLong(i -> i).toArray();
            assertArrayEquals(refGreedy, greedyIds(m, ids, 24), "default model greedy continuation");
        }
    }

    @Test
    void llama3RopeScalingCheckpointWrittenByHuggingFaceMatches() throws IOException {
        Path folder = Path.of("src/test/resources/checkpoints/tiny-llama3-rope");
        JsonNode fixture = JSON.readTree(Path.of("src/test/resources/reference/tiny-llama3-rope.json").toFile());
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            assertEquals("llama3", m.config().ropeScaling().type());
            assertEquals(200, m.config().ropeScaling().originalMaxPositions());
            assertEquals(500000.0, m.config().ropeTheta());
            long[] prompt = longs(fixture.get("prompt"));
            double[][] got = Generator.allLogits(m, prompt, Hooks.NONE);
            JsonNode logits = fixture.get("logits");
            for (int p = 0; p < prompt.length; p++) {
                assertLogitsClose(doubles(logits.get(p)), got[p], "position " + p);
            }
            assertArrayEquals(longs(fixture.get("greedy")), greedyIds(m, prompt, fixture.get("greedy").size()));
        }
    }

    static Stream<Arguments> tinyVariants() {
        return Stream.of(
                Arguments.of("gqa-tied", TinyCheckpoint.llama().hidden(32).layers(2).heads(4).kvHeads(2)),
                Arguments.of("mha-untied", TinyCheckpoint.llama().heads(4).kvHeads(4).tied(false)),
                Arguments.of("gqa-untied-llama3", TinyCheckpoint.llama().hidden(48).heads(6).kvHeads(2).tied(false)
                        .ropeTheta(500000).llama3RopeScaling(8, 1, 4, 24).maxPositions(256)),
                Arguments.of("explicit-head-dim", TinyCheckpoint.llama().hidden(32).heads(4).kvHeads(1).headDim(12)),
                Arguments.of("bf16-sharded", TinyCheckpoint.llama().dtype("BF16").sharded(true).tied(false)),
                Arguments.of("f16", TinyCheckpoint.llama().dtype("F16").layers(3)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("tinyVariants")
    void randomCheckpointsMatchTheFloat64Reference(String name, TinyCheckpoint spec, @TempDir Path tmp)
            throws IOException {
        Path folder = spec.seed(name.hashCode()).writeTo(tmp.resolve(name));
        ReferenceLlama ref = ReferenceLlama.load(folder);
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu())) {
            int[] ids = new int[40];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = 1 + (i * 13) % (m.config().vocabSize() - 1);
            }
            long[] lids = Arrays.stream(ids).mapToLong(i -> i).toArray();
            double[][] want = ref.logits(ids);
            double[][] got = Generator.allLogits(m, lids, Hooks.NONE);
            for (int p = 0; p < ids.length; p++) {
                assertLogitsClose(want[p], got[p], name + " position " + p);
            }
            long[] refGreedy = Arrays.stream(ref.greedy(Arrays.copyOf(ids, 5), 16)).mapToLong(i -> i).toArray();
            assertArrayEquals(refGreedy, greedyIds(m, Arrays.copyOf(lids, 5), 16), name + " greedy");
        }
        assertEquals(true, Files.isDirectory(folder));
    }
}
