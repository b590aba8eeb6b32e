package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Every score on hand-made texts whose answers are worked out by hand. */
class TextScoresTest {

    @Test
    void wordsAreLowerCasedRunsOfLetters() {
        assertEquals(List.of("the", "dog", "s", "bone", "isn", "t", "here"),
                TextScores.words("The dog's bone -- isn't here! 42"));
        assertEquals(Set.of("a", "b"), SteeringEval.words("A b a"));
    }

    @Test
    void conceptHitsCountEveryOccurrence() {
        assertEquals(3, TextScores.conceptHits("The Dog barked. The dog ran to the dogs.", List.of("dog", "Dogs")));
        assertEquals(0, TextScores.conceptHits("A hotdog is not a dog word here", List.of("dogs")));
    }

    @Test
    void distinctBigrams() {
        // "a b a b": bigrams ab, ba, ab -> 2 distinct of 3
        assertEquals(2.0 / 3, TextScores.distinct2("a b a b"), 1e-15);
        assertEquals(1.0, TextScores.distinct2("one two three"));
        assertEquals(0.0, TextScores.distinct2("alone"));
    }

    @Test
    void repetitionRateCountsRepeatedFourGrams() {
        // 8 words, 5 four-grams: (a b c d) (b c d a) (c d a b) (d a b c) (a b c d): the last repeats the first
        assertEquals(1.0 / 5, TextScores.repetitionRate("a b c d a b c d"), 1e-15);
        assertEquals(0.0, TextScores.repetitionRate("the cat sat on the mat"));
        assertEquals(0.0, TextScores.repetitionRate("too short"));
        // "x x x x x x": 3 four-grams, all (x x x x): two repeat
        assertEquals(2.0 / 3, TextScores.repetitionRate("x x x x x x"), 1e-15);
    }

    @Test
    void harmonicMeanAsAxBenchAggregates() {
        assertEquals(0.5, TextScores.harmonicMean(0.5, 0.5, 0.5), 1e-15);
        // 3 / (1/1 + 1/0.5 + 1/0.25) = 3 / 7
        assertEquals(3.0 / 7, TextScores.harmonicMean(1, 0.5, 0.25), 1e-15);
        assertEquals(0.0, TextScores.harmonicMean(1, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> TextScores.harmonicMean(1.5, 0.5));
    }

    @Test
    void bootstrapIntervalsHoldTheMeanAndReproduce() {
        List<Double> same = List.of(2.0, 2.0, 2.0);
        TextScores.Interval flat = TextScores.bootstrap(same, x -> x, 200, 0.95, 1);
        assertEquals(2.0, flat.mean());
        assertEquals(2.0, flat.low());
        assertEquals(2.0, flat.high());
        List<Double> units = List.of(0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0);
        TextScores.Interval a = TextScores.bootstrap(units, x -> x, 2000, 0.95, 7);
        TextScores.Interval b = TextScores.bootstrap(units, x -> x, 2000, 0.95, 7);
        assertEquals(a, b, "a fixed seed reproduces the interval");
        assertEquals(0.6, a.mean(), 1e-15);
        // the mean of 10 Bernoulli(0.6) draws has a standard error of about 0.155: a 95% interval near 0.6 +- 0.3
        assertTrue(a.low() >= 0.2 && a.low() <= 0.4 && a.high() >= 0.8 && a.high() <= 1.0, a.toString());
    }

    @Test
    void quantilesInterpolateLikeNumpy() {
        double[] sorted = {1, 2, 3, 4};
        assertEquals(1.0, TextScores.quantile(sorted, 0));
        assertEquals(2.5, TextScores.quantile(sorted, 0.5));
        assertEquals(3.25, TextScores.quantile(sorted, 0.75));
    }

    @Test
    void longestRunOfOneId() {
        assertEquals(3, SteeringEval.longestRun(new long[] {1, 2, 2, 2, 3, 3}));
        assertEquals(1, SteeringEval.longestRun(new long[] {1, 2, 1}));
        assertEquals(0, SteeringEval.longestRun(new long[0]));
    }

    @Test
    void theSuccessRuleNeedsANewConceptWordFluencyAndNoLoop() {
        Set<String> concept = Set.of("dog", "bark");
        Set<String> plain = SteeringEval.words("she went to the dog park");
        long[] ids = {5, 6, 7, 8};
        // "bark" is new; "dog" was already in the unsteered text
        SteeringEval.Try ok = SteeringEval.score("the dog began to bark", ids, 30, 20, plain, concept, 2);
        assertTrue(ok.success());
        assertEquals(List.of("bark"), ok.newWords());
        assertEquals(1.5, ok.ratio(), 1e-15);
        assertTrue(!SteeringEval.score("the dog sat", ids, 30, 20, plain, concept, 2).success(), "no new word");
        assertTrue(!SteeringEval.score("bark", ids, 41, 20, plain, concept, 2).success(), "perplexity over 2x");
        assertTrue(SteeringEval.score("bark", ids, 40, 20, plain, concept, 2).success(), "exactly 2x is allowed");
        assertTrue(!SteeringEval.score("bark", new long[] {1, 9, 9, 9, 9}, 20, 20, plain, concept, 2).success(),
                "a token 4 times in a row");
        assertTrue(SteeringEval.score("bark", new long[] {9, 9, 9, 1, 9}, 20, 20, plain, concept, 2).success(),
                "3 in a row is allowed");
    }

    private static SteeringEval.Try tried(String text, double ratio, int run) {
        return new SteeringEval.Try(1, text, 10 * ratio, ratio, List.of(), run, false);
    }

    private static SteeringEval.Pair pair(String concept, String prompt, String unsteered, SteeringEval.Try... tries) {
        return new SteeringEval.Pair(concept, prompt, "operator", unsteered, 10, List.of(tries), null);
    }

    /**
     * The chance control, worked out by hand: three concepts, two prompts. Prompt p: dog's pair is hit by cat's
     * continuation ("puppy"; "dog" was already unsteered) but not by rain's (its "puppy" text fails the perplexity
     * rule): 1/2; cat's pair by neither ("purr" comes only in a loop that fails the run rule): 0; rain's pair by
     * cat's ("wet"): 1/2. Prompt q: dog's by rain's ("bark", ratio exactly 2): 1/2; cat's by none: 0; rain's by
     * dog's ("rain"; cat's "wet" fails the perplexity rule): 1/2. Mean 2 / 6.
     */
    @Test
    void chanceScoresEachPairOnTheOtherConceptsContinuations() {
        Map<String, Set<String>> words = Map.of("dog", Set.of("dog", "puppy", "bark"), "cat",
                Set.of("cat", "kitten", "purr"), "rain", Set.of("rain", "wet"));
        List<SteeringEval.Pair> pairs = List.of(
                pair("dog", "p", "a dog sat", tried("the dog sat", 1, 1)),
                pair("cat", "p", "a dog sat", tried("a puppy got wet", 1.5, 1), tried("kitten kitten", 1, 4)),
                pair("rain", "p", "a dog sat", tried("a puppy", 2.5, 1), tried("purr purr", 1, 4)),
                pair("dog", "q", "it was", tried("rain", 1, 1)),
                pair("cat", "q", "it was", tried("wet", 3, 1)),
                pair("rain", "q", "it was", tried("the dog began to bark", 2, 3)));
        assertEquals(2.0 / 6, SteeringEval.chance(pairs, words), 1e-15);
        assertEquals(0, SteeringEval.chance(pairs.subList(0, 1), words));
    }
}
