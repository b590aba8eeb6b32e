package lab.steering.train;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The tokenizer written by {@link BpeTrainer} loads in DJL's Hugging Face tokenizer (the library the app uses),
 * puts {@code <|bos|>} first, decodes every document back exactly, and gives the same ids as the own encoder.
 */
class TokenizerRoundTripTest {

    /** Strings that are not in the sample and stress the pre-tokenizer and the byte mapping. */
    static final List<String> EDGE_CASES = List.of(
            "",
            " leading space",
            "trailing space ",
            "tabs\tand\r\nCRLF\u000bvertical tab",
            "\n\nblank lines\n\n\n",
            "multiple   spaces    between",
            "it's they'll we'VE I'D o'clock",
            "unicode \u03b6 \ud83d\ude80 \ud835\udd18 \u00a0no-break\u2009thin space \u0000 nul",
            "decomposed e\u0301 versus composed \u00e9",
            "text that looks special: <|bos |> < |eos|> <unk> [CLS]",
            "byte characters themselves: \u0120\u010a\u0100",
            "12345678901234567890 3.5e-7 -42");

    static Path sample() throws URISyntaxException {
        return Path.of(TokenizerRoundTripTest.class.getResource("sample.txt").toURI());
    }

    @Test
    void sampleTokenizerLoadsInDjlAndRoundTrips(@TempDir Path dir) throws Exception {
        List<String> docs = CorpusBuilder.readDocs(sample());
        assertTrue(docs.size() >= 5);
        Map<String, Long> counts = BpeTrainer.countWords(docs);
        BpeTrainer.Model model = BpeTrainer.train(counts, 600);
        assertTrue(model.tokens().size() > 400, "learned merges: " + model.merges().size());
        TokenizerFiles.write(dir, model, 256, null);
        BpeEncoder own = BpeEncoder.load(dir.resolve("tokenizer.json"));

        try (HuggingFaceTokenizer djl = TokenizerCheck.load(dir)) {
            List<String> all = new ArrayList<>(docs);
            all.addAll(EDGE_CASES);
            TokenizerCheck.Result r = TokenizerCheck.check(djl, own, all);
            assertEquals(0, r.roundTripMismatches, r.examples.toString());
            assertEquals(0, r.idMismatches, r.examples.toString());
            assertEquals(0, r.bosMissing);

            // BOS is added by the post-processor, once, with id 0; text longer than model_max_length is not cut
            long[] ids = djl.encode("And God said").getIds();
            assertEquals(0L, ids[0]);
            assertEquals(1, java.util.Arrays.stream(ids).filter(x -> x == 0).count());
            String longText = String.join("\n", docs);
            assertEquals(own.encode(longText, true).size(), djl.encode(longText).getIds().length);
            assertTrue(djl.encode(longText).getIds().length > 256);
            // skipSpecialTokens=false shows the BOS token as text
            assertEquals("<|bos|>And God said", djl.decode(ids, false));
        }
    }

    @Test
    void ownEncoderAgreesWithTrainingOnMergedWords(@TempDir Path dir) throws Exception {
        List<String> docs = CorpusBuilder.readDocs(sample());
        BpeTrainer.Model model = BpeTrainer.train(BpeTrainer.countWords(docs), 600);
        TokenizerFiles.write(dir, model, 256, null);
        BpeEncoder own = BpeEncoder.load(dir.resolve("tokenizer.json"));
        // " the" is frequent in the sample: it must be one token, with the space attached (GPT-2 style)
        List<Integer> ids = own.encode(" the", false);
        assertEquals(1, ids.size());
        assertEquals("\u0120the", own.token(ids.get(0)));
        assertEquals(List.of(" the", " light"), TokenizerCheck.pieces(own, " the light"));
    }

    @Test
    void djlAndOwnEncoderReadTheSameIdsFromPairFormatMerges(@TempDir Path dir) throws Exception {
        // the newer tokenizers write merges as [left, right] pairs; the own encoder reads both forms
        List<String> docs = CorpusBuilder.readDocs(sample());
        BpeTrainer.Model model = BpeTrainer.train(BpeTrainer.countWords(docs), 500);
        TokenizerFiles.write(dir, model, 256, null);
        String json = Files.readString(dir.resolve("tokenizer.json"));
        var mapper = CorpusBuilder.mapper();
        var root = (com.fasterxml.jackson.databind.node.ObjectNode) mapper.readTree(json);
        var merges = (com.fasterxml.jackson.databind.node.ArrayNode) root.get("model").get("merges");
        var pairs = mapper.createArrayNode();
        merges.forEach(m -> {
            String s = m.asText();
            pairs.addArray().add(s.substring(0, s.indexOf(' '))).add(s.substring(s.indexOf(' ') + 1));
        });
        ((com.fasterxml.jackson.databind.node.ObjectNode) root.get("model")).set("merges", pairs);
        Path pairDir = Files.createDirectories(dir.resolve("pairs"));
        mapper.writeValue(pairDir.resolve("tokenizer.json").toFile(), root);
        BpeEncoder a = BpeEncoder.load(dir.resolve("tokenizer.json"));
        BpeEncoder b = BpeEncoder.load(pairDir.resolve("tokenizer.json"));
        try (HuggingFaceTokenizer djl = TokenizerCheck.load(pairDir)) {
            for (String d : docs) {
                assertEquals(a.encode(d, true), b.encode(d, true));
                long[] ids = djl.encode(d).getIds();
                assertArrayEquals(a.encode(d, true).stream().mapToLong(Integer::longValue).toArray(), ids);
            }
        }
    }

    /** Runs on the real validation set when tools/train/corpus.sh and tools/train/tokenizer.sh have been run. */
    @Test
    void wholeValidationSetRoundTrips() throws IOException {
        Path corpus = Path.of(System.getProperty("corpus.dir", "target/corpus"));
        Path valid = corpus.resolve("valid.txt");
        Path tokenizer = corpus.resolve("tokenizer");
        assumeTrue(Files.exists(valid) && Files.exists(tokenizer.resolve("tokenizer.json")),
                "no built corpus/tokenizer under " + corpus);
        List<String> docs = CorpusBuilder.readDocs(valid);
        try (HuggingFaceTokenizer djl = TokenizerCheck.load(tokenizer)) {
            TokenizerCheck.Result r = TokenizerCheck.check(djl, BpeEncoder.load(tokenizer.resolve("tokenizer.json")),
                    docs);
            assertEquals(docs.size(), r.documents);
            assertEquals(0, r.roundTripMismatches, r.examples.toString());
            assertEquals(0, r.idMismatches, r.examples.toString());
            assertEquals(0, r.bosMissing);
        }
    }
}
