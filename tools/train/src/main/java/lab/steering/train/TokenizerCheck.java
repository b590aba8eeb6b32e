package lab.steering.train;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Checks a trained tokenizer with the real library (DJL's Hugging Face tokenizer, offline, from a path):
 * it loads, puts {@code <|bos|>} first, {@code decode(encode(doc), skipSpecialTokens=true)} gives every document
 * back exactly, and its ids equal those of the project's own {@link BpeEncoder} on the same text.
 *
 * <pre>
 * java -Dai.djl.offline=true lab.steering.train.TokenizerCheck --tokenizer target/corpus/tokenizer
 *      --valid target/corpus/valid.txt [--train target/corpus/train.txt]
 *      [--stats target/corpus/stats.json --documents target/corpus/documents.tsv] [--show "some text"]
 * </pre>
 * With {@code --train} the training documents are checked too; with {@code --stats} the token counts per source and
 * split, and per register and split (without BOS/EOS) are written into stats.json. Exits with status 1 on any mismatch.
 */
public final class TokenizerCheck {

    /** Result of checking a list of documents. */
    public static final class Result {
        public long documents;
        public long tokens;
        public long bytes;
        public long roundTripMismatches;
        public long idMismatches;
        public long bosMissing;
        public final List<String> examples = new ArrayList<>();
        public final List<Long> tokensPerDoc = new ArrayList<>();

        public boolean ok() {
            return roundTripMismatches == 0 && idMismatches == 0 && bosMissing == 0;
        }

        @Override
        public String toString() {
            return String.format("%d documents, %d tokens (without BOS), %.3f bytes/token; round-trip mismatches %d,"
                            + " id mismatches vs own encoder %d, BOS missing %d", documents, tokens,
                    tokens == 0 ? 0.0 : (double) bytes / tokens, roundTripMismatches, idMismatches, bosMissing);
        }
    }

    /** Loads a tokenizer folder (or tokenizer.json file) with DJL, offline, without truncation or padding. */
    public static HuggingFaceTokenizer load(Path tokenizer) throws IOException {
        System.setProperty("ai.djl.offline", "true");
        Path file = Files.isDirectory(tokenizer) ? tokenizer.resolve("tokenizer.json") : tokenizer;
        return HuggingFaceTokenizer.builder()
                .optTokenizerPath(file)
                .optAddSpecialTokens(true)
                .optTruncation(false)
                .optPadding(false)
                .build();
    }

    /** Encodes every document with DJL and with the own encoder and compares. */
    public static Result check(HuggingFaceTokenizer djl, BpeEncoder own, List<String> docs) {
        Result r = new Result();
        for (String doc : docs) {
            Encoding enc = djl.encode(doc);
            long[] ids = enc.getIds();
            r.documents++;
            r.bytes += doc.getBytes(StandardCharsets.UTF_8).length;
            long n = ids.length > 0 && ids[0] == 0 ? ids.length - 1 : ids.length;
            r.tokens += n;
            r.tokensPerDoc.add(n);
            if (ids.length == 0 || ids[0] != 0) {
                r.bosMissing++;
            }
            String back = djl.decode(ids, true);
            if (!back.equals(doc)) {
                r.roundTripMismatches++;
                if (r.examples.size() < 5) {
                    r.examples.add("round trip: [" + abbreviate(doc) + "] -> [" + abbreviate(back) + "]");
                }
            }
            List<Integer> mine = own.encode(doc, true);
            boolean same = mine.size() == ids.length;
            for (int i = 0; same && i < ids.length; i++) {
                same = mine.get(i) == ids[i];
            }
            if (!same) {
                r.idMismatches++;
                if (r.examples.size() < 5) {
                    r.examples.add("ids differ: [" + abbreviate(doc) + "]");
                }
            }
        }
        return r;
    }

    private static String abbreviate(String s) {
        String t = s.replace("\n", "\\n");
        return t.length() <= 120 ? t : t.substring(0, 120) + "...";
    }

    /** The token pieces of a text, as readable strings (byte characters decoded where they form whole text). */
    public static List<String> pieces(BpeEncoder own, String text) {
        List<String> out = new ArrayList<>();
        for (int id : own.encode(text, false)) {
            out.add(ByteLevel.fromByteChars(own.token(id)));
        }
        return out;
    }

    public static void main(String[] args) throws IOException {
        Map<String, String> a = Args.parse(args);
        Path tokDir = Path.of(a.getOrDefault("tokenizer", "target/corpus/tokenizer"));
        Path tokJson = Files.isDirectory(tokDir) ? tokDir.resolve("tokenizer.json") : tokDir;
        BpeEncoder own = BpeEncoder.load(tokJson);
        boolean ok = true;
        try (HuggingFaceTokenizer djl = load(tokDir)) {
            if (a.containsKey("show")) {
                String text = a.get("show");
                System.out.println("text:   " + text);
                Encoding enc = djl.encode(text);
                System.out.println("ids:    " + java.util.Arrays.toString(enc.getIds()));
                System.out.println("tokens: " + String.join(" ", enc.getTokens())
                        + "   (byte-level strings: Ġ = space, Ċ = newline)");
                return;
            }
            Map<String, List<String>> splits = new LinkedHashMap<>();
            splits.put("valid", CorpusBuilder.readDocs(Path.of(a.getOrDefault("valid", "target/corpus/valid.txt"))));
            if (a.containsKey("train")) {
                splits.put("train", CorpusBuilder.readDocs(Path.of(a.get("train"))));
            }
            Map<String, Result> results = new LinkedHashMap<>();
            for (Map.Entry<String, List<String>> e : splits.entrySet()) {
                long t0 = System.nanoTime();
                Result r = check(djl, own, e.getValue());
                results.put(e.getKey(), r);
                System.out.printf("TokenizerCheck %s: %s (%.1f s)%n", e.getKey(), r, (System.nanoTime() - t0) / 1e9);
                r.examples.forEach(x -> System.out.println("  " + x));
                ok &= r.ok();
            }
            if (a.containsKey("stats")) {
                writeStats(Path.of(a.get("stats")),
                        Path.of(a.getOrDefault("documents", "target/corpus/documents.tsv")), results,
                        own.vocabSize());
            }
        }
        if (!ok) {
            System.exit(1);
        }
    }

    /** Adds token counts per source and split to stats.json (documents.tsv gives each document's source). */
    static void writeStats(Path statsFile, Path documentsTsv, Map<String, Result> results, int vocabSize)
            throws IOException {
        ObjectMapper m = CorpusBuilder.mapper();
        ObjectNode stats = (ObjectNode) m.readTree(statsFile.toFile());
        List<String> rows = Files.readAllLines(documentsTsv, StandardCharsets.UTF_8);
        Map<String, List<String>> sourcesBySplit = new LinkedHashMap<>();
        Map<String, List<String>> registersBySplit = new LinkedHashMap<>();
        List<String> header = List.of(rows.get(0).split("\t"));
        int sourceCol = header.indexOf("source");
        int registerCol = header.indexOf("register");
        for (String row : rows.subList(1, rows.size())) {
            String[] f = row.split("\t");
            sourcesBySplit.computeIfAbsent(f[0], k -> new ArrayList<>()).add(f[sourceCol]);
            registersBySplit.computeIfAbsent(f[0], k -> new ArrayList<>()).add(f[registerCol]);
        }
        for (Map.Entry<String, Result> e : results.entrySet()) {
            List<String> sources = sourcesBySplit.get(e.getKey());
            List<Long> counts = e.getValue().tokensPerDoc;
            if (sources == null || sources.size() != counts.size()) {
                throw new IllegalStateException("documents.tsv does not match " + e.getKey());
            }
            ObjectNode split = (ObjectNode) stats.get("splits").get(e.getKey());
            Map<String, Long> per = new LinkedHashMap<>();
            long total = 0;
            for (int i = 0; i < counts.size(); i++) {
                per.merge(sources.get(i), counts.get(i), Long::sum);
                total += counts.get(i);
            }
            per.forEach((source, n) -> ((ObjectNode) split.get(source)).put("tokens", n));
            ((ObjectNode) split.get("total")).put("tokens", total);
            List<String> registers = registersBySplit.get(e.getKey());
            ObjectNode regNode = (ObjectNode) stats.get("registers").get(e.getKey());
            Map<String, Long> perRegister = new LinkedHashMap<>();
            for (int i = 0; i < counts.size(); i++) {
                perRegister.merge(registers.get(i), counts.get(i), Long::sum);
            }
            perRegister.forEach((reg, n) -> ((ObjectNode) regNode.get(reg)).put("tokens", n));
        }
        ObjectNode t = stats.putObject("tokenizer");
        t.put("vocabSize", vocabSize);
        t.put("tokensCount", "without <|bos|>/<|eos|>");
        results.forEach((name, r) -> t.put("bytesPerToken_" + name, Math.round(1000.0 * r.bytes / r.tokens) / 1000.0));
        m.writeValue(statsFile.toFile(), stats);
    }
}
