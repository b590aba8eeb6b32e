package lab.steering.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import lab.steering.steer.EvalSuite;
import lab.steering.steer.TextScores;
import org.junit.jupiter.api.Test;

/** Every benchmark score, the split and the per-concept summary on hand-made inputs with answers worked out by hand. */
class OutputScoresTest {

    @Test
    void conceptComponentAveragesCappedHitsAndClippedSimilarity() {
        assertEquals(0.5, OutputScores.concept(1, 0.5), 1e-15);   // (1/2 + 0.5) / 2
        assertEquals(0.5, OutputScores.concept(3, -0.2), 1e-15);  // (min(1, 3/2) + 0) / 2
        assertEquals(0.0, OutputScores.concept(0, -0.1));
        assertEquals(1.0, OutputScores.concept(2, 1.0), 1e-15);
    }

    @Test
    void fluencyComponentIsPerplexityRatioTimesNonRepetition() {
        assertEquals(0.4, OutputScores.fluency(4, 2, 0.2), 1e-15); // min(1, 2/4) * (1 - 0.2)
        assertEquals(1.0, OutputScores.fluency(1, 2, 0), 1e-15);   // lower perplexity than unsteered: capped at 1
        assertEquals(0.0, OutputScores.fluency(Double.POSITIVE_INFINITY, 2, 0));
        assertEquals(0.0, OutputScores.fluency(2, 2, 1));
    }

    @Test
    void aHandScoredContinuation() {
        // words: the dog barked at the dog -> hits 2 (dog twice; "bark" is not "barked"); bigrams: the-dog,
        // dog-barked, barked-at, at-the, the-dog -> 4 distinct of 5; three 4-grams, none repeated
        OutputScores s = OutputScores.of("The dog barked at the dog.", List.of("dog", "bark"), -2.5, 3, 3, 0.6, 0.5);
        assertEquals(2, s.hits());
        assertEquals(0.8, s.distinct2(), 1e-15);
        assertEquals(0.0, s.repetition());
        assertEquals(1.0, s.perplexityRatio(), 1e-15);
        assertEquals(0.8, s.concept(), 1e-15);          // (1 + 0.6) / 2
        assertEquals(1.0, s.fluency(), 1e-15);
        assertEquals(0.5, s.promptRelevance(), 1e-15);
        assertEquals(3 / (1 / 0.8 + 1 + 2), s.aggregate(), 1e-15); // harmonic mean of 0.8, 1, 0.5 = 0.70588...
        assertEquals(-2.5, s.conceptLogProb());
    }

    @Test
    void aggregateIsZeroWhenAnyComponentIsZero() {
        OutputScores offTopic = OutputScores.of("a dog", List.of("dog"), null, 2, 2, 0.9, -0.3);
        assertEquals(0.0, offTopic.promptRelevance());
        assertEquals(0.0, offTopic.aggregate());
        assertNull(offTopic.conceptLogProb());
        OutputScores empty = OutputScores.of("  ", List.of("dog"), null, 1, 2, 0.9, 0.9);
        assertEquals(0.0, empty.concept());
        assertEquals(0.0, empty.fluency());
        assertEquals(0.0, empty.aggregate());
    }

    @Test
    void cosineOfKnownAngles() {
        assertEquals(1 / Math.sqrt(2), Embedder.cosine(new float[] {1, 0}, new float[] {1, 1}), 1e-7);
        assertEquals(-1.0, Embedder.cosine(new float[] {1, 2}, new float[] {-2, -4}), 1e-7);
        assertEquals(0.0, Embedder.cosine(new float[] {0, 0}, new float[] {1, 1}));
        assertThrows(IllegalArgumentException.class, () -> Embedder.cosine(new float[1], new float[2]));
    }

    @Test
    void conceptLogMassSumsTheProbabilitiesOfTheConceptTokens() {
        double[] lp = {Math.log(0.5), Math.log(0.25), Math.log(0.25)};
        assertEquals(Math.log(0.5), SteeringBenchmark.logSum(lp, new long[] {1, 2}), 1e-15);
        assertEquals(Math.log(Double.MIN_NORMAL), SteeringBenchmark.logSum(lp, new long[0]), 1e-9);
    }

    @Test
    void promptsSplitBySeedIntoDisjointParts() {
        int[][] a = SteeringBenchmark.split(10, 0.3, 7);
        assertEquals(3, a[0].length);
        assertEquals(7, a[1].length);
        Set<Integer> all = new HashSet<>();
        Arrays.stream(a[0]).forEach(all::add);
        Arrays.stream(a[1]).forEach(all::add);
        assertEquals(10, all.size(), "every prompt in exactly one part");
        assertArrayEquals(a[0], SteeringBenchmark.split(10, 0.3, 7)[0], "the same seed, the same split");
        boolean differs = false;
        for (long seed = 0; seed < 20 && !differs; seed++) {
            differs = !Arrays.equals(a[0], SteeringBenchmark.split(10, 0.3, seed)[0]);
        }
        assertTrue(differs, "the seed chooses the split");
        int[][] two = SteeringBenchmark.split(2, 0.01, 1);
        assertEquals(1, two[0].length, "at least one prompt chooses");
        assertEquals(1, SteeringBenchmark.split(2, 0.99, 1)[1].length, "at least one prompt is reported");
    }

    @Test
    void summaryAveragesPerConceptFirst() {
        // concept 0: aggregates 0.2 and 0.4 (mean 0.3); concept 1: 0.9 -> 0.6 over concepts, not 0.5 over rows
        List<SteeringBenchmark.Output> rows = new ArrayList<>();
        rows.add(row(0, 0.2));
        rows.add(row(0, 0.4));
        rows.add(row(1, 0.9));
        SteeringBenchmark.Settings s = new SteeringBenchmark.Settings(List.of("none"), List.of(1.0), List.of(), 8, 0,
                3, 0.3, 4, 500);
        TextScores.Interval agg = SteeringBenchmark.summarise(rows, 2, s).get("aggregate");
        assertEquals(0.6, agg.mean(), 1e-12);
        assertTrue(agg.low() >= 0.3 - 1e-12 && agg.high() <= 0.9 + 1e-12 && agg.low() <= agg.high());
        assertNull(SteeringBenchmark.summarise(rows, 2, s).get("conceptLogProb"), "undefined everywhere: left out");
        assertEquals(SteeringBenchmark.summarise(rows, 2, s), SteeringBenchmark.summarise(rows, 2, s), "seeded");
    }

    private static SteeringBenchmark.Output row(int concept, double aggregate) {
        OutputScores sc = new OutputScores(0, null, 0, 1, 1, 0, 1, 0, 0, 0, 0, aggregate);
        return new SteeringBenchmark.Output(concept, 0, "report", "none", null, null, "x", 1, sc);
    }

    @Test
    void theDefaultSuitePassesAndBadSuitesNameTheField() {
        EvalSuite d = EvalSuite.defaultSuite();
        assertNotNull(SuiteCheck.check(d));
        assertTrue(d.concepts().size() >= 20 && d.prompts().size() >= 10);
        EvalSuite.Concept dog = new EvalSuite.Concept("dog", "The dog barked.", null, List.of("dog", "hot dog"));
        assertEquals("concepts[0].words[1]", field(new EvalSuite("s", null, List.of(dog), List.of("a", "b"))));
        EvalSuite.Concept ok = new EvalSuite.Concept("dog", "The dog barked.", null, List.of("dog"));
        assertEquals("concepts[1].name", field(new EvalSuite("s", null, List.of(ok, ok), List.of("a", "b"))));
        assertEquals("prompts", field(new EvalSuite("s", null, List.of(ok), List.of("only one"))));
        assertEquals("prompts[1]", field(new EvalSuite("s", null, List.of(ok), List.of("a", " "))));
        assertEquals("name", field(new EvalSuite("", null, List.of(ok), List.of("a", "b"))));
        assertEquals("concepts", field(new EvalSuite("s", null, null, List.of("a", "b"))));
        EvalSuite.Concept noPrompt = new EvalSuite.Concept("dog", null, null, List.of("dog"));
        assertEquals("concepts[0].conceptPrompt", field(new EvalSuite("s", null, List.of(noPrompt), List.of("a", "b"))));
    }

    private static String field(EvalSuite s) {
        return assertThrows(InvalidSetting.class, () -> SuiteCheck.check(s)).field();
    }
}
