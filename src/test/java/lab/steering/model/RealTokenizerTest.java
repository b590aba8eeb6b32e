package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real tokenizers of Llama 3, Qwen 3 and Gemma 3 (fetched by scripts/fetch-tokenizers.sh, which ./test.sh runs)
 * load through {@link TextTokenizer}, give the ids Hugging Face's own code gives (recorded once by
 * scripts/reference/hf_tokenizer_ids.py in reference/hf-tokenizer-ids.json, with tokenizers and transformers agreeing)
 * and round-trip English, Chinese, Russian and emoji text. BOS: Gemma 3 adds {@code <bos>}, Qwen 3 none, the npm copy
 * of Llama 3 (its first release) none, and Llama 3 with the post-processor of Meta's published file
 * {@code <|begin_of_text|>}. Skipped, with a message, where the files were not fetched.
 */
class RealTokenizerTest {

    static final ObjectMapper JSON = new ObjectMapper();

    /** Where scripts/fetch-tokenizers.sh puts the files (same variable, same default). */
    static Path cache() {
        String env = System.getenv("LAB_TOKENIZER_CACHE");
        return env != null && !env.isBlank() ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache", "steering-lab", "tokenizers");
    }

    static JsonNode fixture() throws IOException {
        try (InputStream in = RealTokenizerTest.class.getResourceAsStream("/reference/hf-tokenizer-ids.json")) {
            return JSON.readTree(in);
        }
    }

    static Path require(String family) {
        Path folder = cache().resolve(family);
        Assumptions.assumeTrue(Files.isRegularFile(folder.resolve("tokenizer.json")),
                "skipped: " + folder + "/tokenizer.json is absent (run scripts/fetch-tokenizers.sh; ./test.sh does)");
        return folder;
    }

    @TestFactory
    List<DynamicTest> idsEqualHuggingFacesAndTextRoundTrips(@TempDir Path tmp) throws IOException {
        JsonNode families = fixture().get("families");
        List<DynamicTest> tests = new ArrayList<>();
        families.fieldNames().forEachRemaining(name -> tests.add(DynamicTest.dynamicTest(name, () -> {
            JsonNode family = families.get(name);
            Path folder = name.equals("llama3-released") ? released(tmp, family.get("postProcessor"))
                    : require(name);
            try (TextTokenizer tok = TextTokenizer.load(folder)) {
                for (JsonNode row : family.get("sentences")) {
                    String text = row.get("text").asText();
                    long[] want = StreamSupport.stream(row.get("ids").spliterator(), false)
                            .mapToLong(JsonNode::asLong).toArray();
                    long[] got = tok.encode(text);
                    assertArrayEquals(want, got, name + ": ids of '" + text + "'");
                    assertEquals(text, tok.decodeText(got), name + ": round trip of '" + text + "'");
                }
            }
        })));
        return tests;
    }

    /** The npm Llama 3 file with the post-processor of Meta's published tokenizer.json (as the fixture holds it). */
    static Path released(Path tmp, JsonNode postProcessor) throws IOException {
        Path src = require("llama3");
        Path dir = Files.createDirectories(tmp.resolve("llama3-released"));
        ObjectNode spec = (ObjectNode) JSON.readTree(src.resolve("tokenizer.json").toFile());
        spec.set("post_processor", postProcessor);
        JSON.writeValue(dir.resolve("tokenizer.json").toFile(), spec);
        Files.copy(src.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        return dir;
    }

    @TestFactory
    List<DynamicTest> bosFollowsEachFamily(@TempDir Path tmp) throws IOException {
        JsonNode pp = fixture().get("families").get("llama3-released").get("postProcessor");
        return List.of(
                DynamicTest.dynamicTest("gemma3 adds <bos> (2)", () -> assertFirst(require("gemma3"), 2, "<bos>")),
                DynamicTest.dynamicTest("llama3 released adds <|begin_of_text|> (128000)",
                        () -> assertFirst(released(tmp, pp), 128000, "<|begin_of_text|>")),
                DynamicTest.dynamicTest("qwen3 adds none", () -> assertNoBos(require("qwen3"))),
                DynamicTest.dynamicTest("llama3 npm copy (first release) adds none", () -> assertNoBos(require("llama3"))));
    }

    static void assertFirst(Path folder, long id, String text) {
        try (TextTokenizer tok = TextTokenizer.load(folder)) {
            long[] ids = tok.encode("Hello");
            assertEquals(id, ids[0]);
            assertEquals(text, tok.decode(new long[] {ids[0]}));
            assertEquals(1, java.util.Arrays.stream(ids).filter(x -> x == id).count(), "exactly one BOS");
            assertEquals("Hello", tok.decodeText(ids));
        }
    }

    static void assertNoBos(Path folder) {
        try (TextTokenizer tok = TextTokenizer.load(folder)) {
            long[] ids = tok.encode("Hello");
            assertEquals("Hello", tok.decode(ids), "no special token before the text");
            assertNotEquals(0, ids.length);
        }
    }
}
