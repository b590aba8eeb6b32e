package lab.steering.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CorpusCleaningTest {

    @Test
    void brownTagsAreStrippedAndPunctuationRejoined() {
        String file = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, Allen/np Jr./np ./.\n"
                + "It/pps met/vbd (/( twice/rb )/) ;/. ;/.\n"
                + "yet/cc it/pps is/bez the/at '/' best/jjt '/' --/-- so/rb far/rb ?/. ?/.\n"
                + "\n\nHeadline/nn-hl here/rb-hl \n"
                + "Let/vb **zg/nn be/be a/at curve/nn ./.\n"
                + "\tHe/pps said/vbd ,/, ``/`` Fine/jj ''/'' ./.\n";
        BrownDetokenizer.Counts c = new BrownDetokenizer.Counts();
        List<String> p = BrownDetokenizer.paragraphs(file, c);
        assertEquals(List.of(
                "The jury said \"no evidence,\" Allen Jr. It met (twice); yet it is the 'best'--so far?",
                "Headline here",
                "He said, \"Fine.\""), p);
        assertEquals(1, c.droppedSentences);
    }

    @Test
    void normalizerMapsTypographyAndRepairsMojibake() {
        assertEquals("\"Hello,\" she said--'twas 1914-18... ok", TextNormalizer.line(
                "\u201cHello,\u201d\tshe said\u2014\u2018twas 1914\u201318\u2026 \u00a0ok  "));
        // UTF-8 read as Latin-1, once and twice
        assertEquals("don't \"wrong\"", TextNormalizer.line("don\u00e2\u0080\u0099t \u00e2\u0080\u009cwrong\u00e2\u0080\u009d"));
        assertEquals("na\u00efve caf\u00e9 \u00a35", TextNormalizer.line("na\u00efve cafe\u0301 \u00c2\u00a35"));
        assertEquals("BODY!", TextNormalizer.line("____\b\b\b\bBODY!\u0007"));
    }

    @Test
    void splitIsDeterministicAndHoldsOutEverySource() {
        Map<String, List<Doc>> bySource = new LinkedHashMap<>();
        for (String s : CorpusBuilder.SOURCE_ORDER) {
            List<Doc> docs = new ArrayList<>();
            int n = s.equals("nlp-corpus") ? 7 : 300;
            for (int i = 0; i < n; i++) {
                docs.add(new Doc(s, "x", s + "/" + i, List.of(s + " document number " + i)));
            }
            bySource.put(s, docs);
        }
        CorpusBuilder.Split a = CorpusBuilder.split(bySource, 42, 0.02);
        CorpusBuilder.Split b = CorpusBuilder.split(bySource, 42, 0.02);
        assertEquals(a.valid(), b.valid());
        // 2% of 300 = 6 from each natural source with 300 documents, 1 from nlp-corpus, none from the stories
        assertEquals(6 * 6 + 1, a.valid().size());
        for (String s : CorpusBuilder.SOURCE_ORDER) {
            boolean synthetic = CorpusBuilder.SYNTHETIC.contains(s);
            assertEquals(!synthetic, a.valid().stream().anyMatch(d -> d.source().equals(s)), s);
        }
        assertEquals(300, a.train().stream().filter(d -> d.source().equals("stories")).count(),
                "program-written stories are for training only");
        CorpusBuilder.Split c = CorpusBuilder.split(bySource, 43, 0.02);
        assertFalse(a.valid().equals(c.valid()), "another seed gives another split");
    }

    @Test
    void duplicatesAreRemovedAcrossSources() {
        String verse = "For God so loved the world, that he gave his only begotten Son, that whosoever believeth";
        Map<String, List<Doc>> in = new LinkedHashMap<>();
        in.put("kjv", List.of(new Doc("kjv", "John", "kjv/John/3", List.of(verse))));
        in.put("fortunes", List.of(
                new Doc("fortunes", "f", "fortunes/f/1", List.of(verse.toUpperCase(), "-- John 3:16")),
                new Doc("fortunes", "f", "fortunes/f/2", List.of("Short and new.", verse + "!"))));
        Map<String, CorpusBuilder.DedupCounts> counts = new LinkedHashMap<>();
        Map<String, List<Doc>> out = CorpusBuilder.deduplicate(in, counts);
        assertEquals(1, out.get("kjv").size());
        assertTrue(out.get("fortunes").isEmpty());
        // f/1: same words as the verse once the attribution line is ignored; f/2: mostly the verse
        assertEquals(1, counts.get("fortunes").duplicateDocuments);
        assertEquals(1, counts.get("fortunes").nearDuplicateDocuments);
    }

    @Test
    void documentsSurviveWriteAndRead(@TempDir Path dir) throws Exception {
        List<Doc> docs = List.of(new Doc("a", "s", "1", List.of("one", "two lines")), new Doc("a", "s", "2",
                List.of("three")));
        CorpusBuilder.writeDocs(dir.resolve("t.txt"), docs);
        assertEquals(List.of("one\ntwo lines", "three"), CorpusBuilder.readDocs(dir.resolve("t.txt")));
    }

    @Test
    void fortuneFilterDropsBlocklistedAndPictures() {
        assertTrue(SourceReaders.FORTUNE_BLOCKLIST.matcher("what the Hell").find());
        assertFalse(SourceReaders.FORTUNE_BLOCKLIST.matcher("a shell script on grapes").find());
        assertFalse(SourceReaders.prose("  /\\_/\\\n ( o.o )\n  > ^ <"));
        assertTrue(SourceReaders.prose("A day for firm decisions!!!!!  Or is it?"));
    }

    @Test
    void storiesKeepTheirRepeatedSentencesButNotRepeatedDocuments() {
        String line = "The dog ran in circles and wagged its tail, happy to be out in the park.";
        Map<String, List<Doc>> in = new LinkedHashMap<>();
        in.put("stories", List.of(
                new Doc("stories", "grammar", "stories/0", List.of("Tom had a dog.", line)),
                new Doc("stories", "grammar", "stories/1", List.of("Mia had a dog.", line)),
                new Doc("stories", "grammar", "stories/2", List.of("Tom had a dog.", line))));
        Map<String, CorpusBuilder.DedupCounts> counts = new LinkedHashMap<>();
        Map<String, List<Doc>> out = CorpusBuilder.deduplicate(in, counts);
        assertEquals(List.of("stories/0", "stories/1"), out.get("stories").stream().map(Doc::id).toList());
        assertEquals(2, out.get("stories").get(1).paragraphs().size(), "a sentence shared by two stories stays");
    }

    @Test
    void mobyDickIsSplitIntoChaptersWithParagraphsRejoined(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("data.txt");
        java.nio.file.Files.writeString(f, "CHAPTER 1. Loomings.\n\nCall me Ishmael. Some years\nago\u2014never mind."
                + "\n\nThere now is\nyour city.\n\nCHAPTER 2. The Carpet-Bag.\n\nI stuffed a shirt.\n");
        List<Doc> docs = SourceReaders.mobyDick(f);
        assertEquals(2, docs.size());
        assertEquals(List.of("Call me Ishmael. Some years ago--never mind.", "There now is your city."),
                docs.get(0).paragraphs());
        assertEquals("moby-dick/002", docs.get(1).id());
    }

    @Test
    void stateOfTheUnionSkipsTheYearsNlpCorpusHasAndCutsParagraphs(@TempDir Path dir) throws Exception {
        StringBuilder text = new StringBuilder(" To the Congress:");
        for (int i = 1; i <= 7; i++) {
            text.append(" Sentence number ").append(i).append(" is here.");
        }
        java.nio.file.Files.writeString(dir.resolve("1946_harry_s_truman_d.txt"), text);
        java.nio.file.Files.writeString(dir.resolve("1990_george_bush_r.txt"), " Mr. President, a duplicate.");
        List<Doc> docs = SourceReaders.sotu(dir, java.util.Set.of("1990"));
        assertEquals(1, docs.size());
        assertEquals("sotu/1946_harry_s_truman_d", docs.get(0).id());
        // 7 sentences (the salutation runs into the first): five to a paragraph
        assertEquals(2, docs.get(0).paragraphs().size());
        assertEquals("Sentence number 6 is here. Sentence number 7 is here.", docs.get(0).paragraphs().get(1));
    }

    @Test
    void wordnetKeepsTheQuotedExamplesOfTheGlosses(@TempDir Path dir) throws Exception {
        String noun = "  1 This software and database is being provided \"AS IS\" to you\n"
                + "00003553 03 n 02 whole 0 unit 0 000 | an assemblage of parts; \"how big is that part compared to "
                + "the whole?\"; \"the team is a unit\"\n"
                + "00003554 03 n 01 dog 0 000 | a domestic animal; \"the dog barked all night\"\n";
        java.nio.file.Files.writeString(dir.resolve("data.noun"), noun);
        for (String pos : List.of("verb", "adj", "adv")) {
            java.nio.file.Files.writeString(dir.resolve("data." + pos), "");
        }
        List<Doc> docs = SourceReaders.wordnet(dir);
        assertEquals(1, docs.size());
        assertEquals(List.of("how big is that part compared to the whole?", "the team is a unit",
                "the dog barked all night"), docs.get(0).paragraphs());
    }

    @Test
    void heldOutBlocksForTheBaselinesComeFromTheWholeStream() {
        int[] ids = new int[NgramBaseline.BLOCK * 40];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = i;
        }
        int[][] split = NgramBaseline.heldOut(ids);
        assertEquals(ids.length - 2 * NgramBaseline.BLOCK, split[0].length);
        assertEquals(2 * (NgramBaseline.BLOCK + 1), split[1].length);
        assertEquals(19 * NgramBaseline.BLOCK - 1, split[1][0], "each held block starts with the id before it");
        assertEquals(39 * NgramBaseline.BLOCK - 1, split[1][NgramBaseline.BLOCK + 1]);
    }
}
