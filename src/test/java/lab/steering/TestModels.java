package lab.steering;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import lab.steering.testing.TinyCheckpoint;

/**
 * Writes the models folder the test app scans (target/test-models, see application.properties): broken folders
 * that must be reported without stopping the app. ../shared/models is scanned as well when present.
 */
public class TestModels implements QuarkusTestResourceLifecycleManager {

    public static final Path DIR = Path.of("target", "test-models");

    @Override
    public Map<String, String> start() {
        try {
            write();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Map.of();
    }

    /** Deletes {@code dir} with everything in it (if it is there) and creates it empty. */
    public static void emptyFolder(Path dir) throws IOException {
        if (Files.exists(dir)) {
            try (var walk = Files.walk(dir)) {
                walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        Files.createDirectories(dir);
    }

    static void write() throws IOException {
        emptyFolder(DIR);
        Path unknown = Files.createDirectories(DIR.resolve("broken-unknown-arch"));
        Files.writeString(unknown.resolve("config.json"), "{\"model_type\": \"mamba\", \"hidden_size\": 8}");
        Path noWeights = Files.createDirectories(DIR.resolve("broken-no-weights"));
        Files.writeString(noWeights.resolve("config.json"), """
                {"model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
                 "num_attention_heads": 2, "vocab_size": 4}""");
        Files.writeString(noWeights.resolve("tokenizer.json"), wordLevelTokenizer(4));
        writeCompareModels();
        if (SharedModels.present(SharedModels.STORIES)) {
            Path src = SharedModels.root().resolve(SharedModels.STORIES);
            Path shape = Files.createDirectories(DIR.resolve("broken-wrong-shape"));
            Files.writeString(shape.resolve("config.json"),
                    Files.readString(src.resolve("config.json")).replace("\"intermediate_size\": 172",
                            "\"intermediate_size\": 100"));
            Files.copy(src.resolve("tokenizer.json"), shape.resolve("tokenizer.json"));
            Files.createSymbolicLink(shape.resolve("model.safetensors"),
                    src.resolve("model.safetensors").toAbsolutePath());
        }
        if (SharedModels.present(SharedModels.STORIES_TEXT)) {
            // the same shapes and weights as stories260K-text with another rms_norm_eps: another fingerprint, so
            // operators built on stories260K-text must be refused by it
            Path src = SharedModels.root().resolve(SharedModels.STORIES_TEXT);
            Path variant = Files.createDirectories(DIR.resolve(VARIANT));
            Files.writeString(variant.resolve("config.json"), Files.readString(src.resolve("config.json"))
                    .replace("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 1e-06"));
            Files.copy(src.resolve("tokenizer.json"), variant.resolve("tokenizer.json"));
            Files.createSymbolicLink(variant.resolve("model.safetensors"),
                    src.resolve("model.safetensors").toAbsolutePath());
        }
    }

    /**
     * The models the comparison tests compare (API and browser): three families of different shapes (Llama, Qwen 3,
     * Gemma 3), written here so that every Quarkus test shares one app start. Override with the system property
     * {@code lab.test.compare-models} (model ids separated by commas) to compare other loaded models.
     */
    public static final List<String> COMPARE_MODELS = List.of("tiny-llama", "tiny-qwen3", "tiny-gemma3");

    public static List<String> compareModels() {
        String p = System.getProperty("lab.test.compare-models");
        return p == null || p.isBlank() ? COMPARE_MODELS : List.of(p.trim().split("\\s*,\\s*"));
    }

    static void writeCompareModels() throws IOException {
        TinyCheckpoint.llama().hidden(32).layers(2).heads(4).kvHeads(2).intermediate(48).vocab(64).seed(11)
                .writeTo(DIR.resolve("tiny-llama"));
        TinyCheckpoint.family("qwen3").hidden(48).layers(3).heads(4).kvHeads(2).headDim(16).intermediate(96)
                .vocab(80).ropeTheta(1e6).tied(false).seed(12).writeTo(DIR.resolve("tiny-qwen3"));
        TinyCheckpoint.family("gemma3_text").hidden(32).layers(4).heads(4).kvHeads(2).headDim(16).intermediate(48)
                .vocab(48).slidingWindow(3).slidingPattern(2).ropeTheta(1e6).localRopeTheta(10000)
                .queryPreAttnScalar(16).rmsNormEps(1e-6).seed(13).writeTo(DIR.resolve("tiny-gemma3"));
    }

    /** A model folder identical in shape to stories260K-text but with another fingerprint. */
    public static final String VARIANT = "stories260K-variant";

    /** A WordLevel tokenizer.json over t0..t{n-1}, like stories260K's. */
    public static String wordLevelTokenizer(int n) {
        StringBuilder vocab = new StringBuilder();
        for (int i = 0; i < n; i++) {
            vocab.append(i == 0 ? "" : ",").append("\"t").append(i).append("\":").append(i);
        }
        return "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[],\"normalizer\":null,"
                + "\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},\"post_processor\":null,\"decoder\":null,"
                + "\"model\":{\"type\":\"WordLevel\",\"vocab\":{" + vocab + "},\"unk_token\":\"t0\"}}";
    }

    @Override
    public void stop() {
    }
}
