package lab.steering.train;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BpeTrainerTest {

    private static String tok(BpeTrainer.Model m, int[] merge) {
        return m.tokens().get(merge[0]) + "+" + m.tokens().get(merge[1]);
    }

    @Test
    void mergesFollowPairCountsWithIncrementalUpdates() {
        // "low" x5, "lower" x2, "newest" x6, "widest" x3 (the classic example, byte chars = ASCII here)
        Map<String, Long> counts = Map.of("low", 5L, "lower", 2L, "newest", 6L, "widest", 3L);
        BpeTrainer.Model m = BpeTrainer.train(counts, 258 + 4);
        // pairs: es 9, st 9, we 8, lo 7, ow 7, ne 6, ew 6 ...; ties go to the smaller (left id, right id)
        assertEquals("e+s", tok(m, m.merges().get(0)));
        assertEquals("es+t", tok(m, m.merges().get(1)));
        assertEquals("l+o", tok(m, m.merges().get(2)));
        assertEquals("lo+w", tok(m, m.merges().get(3)));
        assertEquals(262, m.tokens().size());
        assertEquals("<|bos|>", m.tokens().get(0));
        assertEquals("<|eos|>", m.tokens().get(1));
        assertEquals("!", m.tokens().get(2 + '!'));
        assertEquals("\u0120", m.tokens().get(2 + ' '));
    }

    @Test
    void byteLevelMappingIsABijectionOnPrintableChars() {
        StringBuilder all = new StringBuilder();
        for (int b = 0; b < 256; b++) {
            char c = ByteLevel.byteChar(b);
            assertTrue(!Character.isWhitespace(c) && !Character.isISOControl(c), "byte " + b);
            all.append(c);
        }
        assertEquals(256, all.chars().distinct().count());
        assertEquals('\u0120', ByteLevel.byteChar(' '));
        assertEquals('\u010a', ByteLevel.byteChar('\n'));
        String s = "caf\u00e9 \ud83d\ude00\n";
        assertEquals(s, ByteLevel.fromByteChars(ByteLevel.toByteChars(s)));
    }

    @Test
    void pretokenizerSplitsLikeGpt2() {
        assertEquals(List.of("Hello", ",", " world", "'s", " 2024", "!!", "  ", " x", "\n", "y"),
                ByteLevel.pretokenize("Hello, world's 2024!!   x\ny"));
        // the last white space before a word goes with the word only if it is one ASCII space; otherwise it stands
        // alone (GPT-2 behaviour): "\n\n" before a word is "\n" + "\n", and a no-break space is not a word prefix
        assertEquals(List.of("a", "\n", "\n", "b", " ", "\u00a0", "c"), ByteLevel.pretokenize("a\n\nb \u00a0c"));
    }

    @Test
    void trainingIsDeterministic() {
        Map<String, Long> counts = BpeTrainer.countWords(List.of("the cat sat on the mat", "the hat, the bat"));
        BpeTrainer.Model a = BpeTrainer.train(counts, 280);
        BpeTrainer.Model b = BpeTrainer.train(counts, 280);
        assertEquals(a.tokens(), b.tokens());
        assertEquals(a.merges().size(), b.merges().size());
        for (int i = 0; i < a.merges().size(); i++) {
            assertEquals(List.of(a.merges().get(i)[0], a.merges().get(i)[1]),
                    List.of(b.merges().get(i)[0], b.merges().get(i)[1]));
        }
    }
}
