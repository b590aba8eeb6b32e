package lab.steering.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class StoryWriterTest {

    @Test
    void variablesFieldsCapitalsAndParagraphs() {
        StoryWriter w = StoryWriter.parse("""
                [story]
                {hero:=hero}{^=hero.1} said hi to {=hero} . || {=hero.2} dog ran , fast !
                [hero]
                Lily/she/her/her
                """);
        assertEquals(List.of("She said hi to Lily.", "Her dog ran, fast!"), w.story(1, 0));
    }

    @Test
    void variableRuleNamesAndPairedChoices() {
        StoryWriter w = StoryWriter.parse("""
                [story]
                {t:=topic}{<t>_ask~qa} {<t>_answer~qa}
                [topic]
                dog
                [dog_ask]
                "Is it yours?" asked Tom.
                "Can I pet it?" asked Tom.
                [dog_answer]
                "Yes, he is mine." said Sam.
                "Yes, he is friendly." said Sam.
                """);
        Set<String> seen = new HashSet<>();
        for (int n = 0; n < 40; n++) {
            String s = String.join("", w.story(7, n));
            assertTrue(s.equals("\"Is it yours?\" asked Tom. \"Yes, he is mine,\" said Sam.")
                    || s.equals("\"Can I pet it?\" asked Tom. \"Yes, he is friendly,\" said Sam."), s);
            seen.add(s);
        }
        assertEquals(2, seen.size(), "both pairs occur, never mixed");
    }

    @Test
    void aStoryRarelyRepeatsALineWhileOthersAreLeft() {
        StoryWriter w = StoryWriter.parse("""
                [story]
                {s} {s}
                [s]
                A.
                B.
                C.
                """);
        int repeats = 0;
        for (int n = 0; n < 1000; n++) {
            String[] lines = w.story(3, n).get(0).split(" ");
            repeats += lines[0].equals(lines[1]) ? 1 : 0;
        }
        // the second draw repeats the first with probability (1/3)^9 = 5e-5 (uniform: 1/3)
        assertTrue(repeats <= 2, "repeats: " + repeats);
    }

    @Test
    void sameSeedSameStoryAndWeightsCount() {
        StoryWriter w = StoryWriter.parse("[story]\n9* {x}\nnever\n[x]\nA.\nB.\n");
        assertEquals(w.story(5, 3), w.story(5, 3));
        int never = 0;
        for (int n = 0; n < 200; n++) {
            never += w.story(1, n).get(0).equals("Never") ? 1 : 0;
        }
        assertTrue(never > 5 && never < 40, "about 1 in 10: " + never);
    }

    @Test
    void badGrammarsAreNamed() {
        assertThrows(IllegalArgumentException.class, () -> StoryWriter.parse("[x]\na\n"), "no [story]");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StoryWriter.parse("[story]\n{missing}\n").story(1, 0));
        assertTrue(e.getMessage().contains("[missing]"), e.getMessage());
    }

    @Test
    void theProjectGrammarWritesDistinctStoriesWithEveryRuleDefined() {
        List<Doc> docs = StoryWriter.documents(Path.of("tools/train/stories.grammar"), 20261126L, 2000);
        Set<String> texts = new HashSet<>();
        for (Doc d : docs) {
            String t = d.text();
            assertTrue(!t.contains("{") && !t.contains("}") && !t.contains("||"), t);
            texts.add(t);
        }
        assertTrue(texts.size() > 1990, "nearly all distinct: " + texts.size());
        assertNotEquals(docs.get(0).text(), docs.get(1).text());
    }
}
