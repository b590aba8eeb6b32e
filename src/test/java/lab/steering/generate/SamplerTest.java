package lab.steering.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SamplerTest {

    static final float[] LOGITS = {2.0f, 1.0f, 0.5f, 3.0f, -1.0f};

    @Test
    void greedyTakesTheArgmaxAndTheFirstOnTies() {
        assertEquals(3, Sampler.argmax(LOGITS));
        assertEquals(1, Sampler.argmax(new float[] {0, 5, 5}));
        assertEquals(3, new Sampler(GenerationParams.greedy(1)).next(LOGITS));
    }

    @Test
    void logProbMatchesAPlainLogSoftmax() {
        double z = 0;
        for (float l : LOGITS) {
            z += Math.exp(l);
        }
        assertEquals(Math.log(Math.exp(1.0) / z), Sampler.logProb(LOGITS, 1), 1e-12);
    }

    @Test
    void topKOneIsGreedyWhateverTheSeed() {
        for (long seed = 0; seed < 20; seed++) {
            assertEquals(3, new Sampler(new GenerationParams(1, 1.0, 1, 1.0, seed)).next(LOGITS));
        }
    }

    @Test
    void topPKeepsOnlyTheNucleus() {
        // softmax: p(3)=0.61, p(0)=0.22, p(1)=0.08 ...: top-p 0.8 keeps {3, 0}
        Sampler s = new Sampler(new GenerationParams(1, 1.0, 0, 0.8, 42));
        for (int i = 0; i < 500; i++) {
            int t = s.next(LOGITS);
            assertTrue(t == 3 || t == 0, "sampled " + t + " outside the nucleus");
        }
    }

    @Test
    void samplingFollowsTheTemperatureScaledDistribution() {
        double temperature = 2.0;
        Sampler s = new Sampler(new GenerationParams(1, temperature, 0, 1.0, 123));
        Map<Integer, Integer> counts = new HashMap<>();
        int n = 200_000;
        for (int i = 0; i < n; i++) {
            counts.merge(s.next(LOGITS), 1, Integer::sum);
        }
        double z = 0;
        for (float l : LOGITS) {
            z += Math.exp(l / temperature);
        }
        for (int k = 0; k < LOGITS.length; k++) {
            double want = Math.exp(LOGITS[k] / temperature) / z;
            double got = counts.getOrDefault(k, 0) / (double) n;
            // 5 standard errors of a binomial proportion
            assertEquals(want, got, 5 * Math.sqrt(want * (1 - want) / n), "token " + k);
        }
    }

    @Test
    void sameSeedSameSequence() {
        GenerationParams p = new GenerationParams(1, 1.0, 0, 1.0, 99);
        Sampler a = new Sampler(p);
        Sampler b = new Sampler(p);
        for (int i = 0; i < 100; i++) {
            assertEquals(a.next(LOGITS), b.next(LOGITS));
        }
    }

    // Repetition controls, with answers worked out by hand from Hugging Face's definitions
    // (RepetitionPenaltyLogitsProcessor, NoRepeatNGramLogitsProcessor).

    static GenerationParams controls(double penalty, int ngram) {
        return new GenerationParams(8, 0, 0, 1, 0, penalty, ngram);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenIdsOnce() {
        long[] seq = {3, 4, 3, 0, 0};
        float[] out = Sampler.process(LOGITS, seq, seq.length, controls(2.0, 0));
        // seen: 0 (2.0 -> 1.0), 3 (3.0 -> 1.5), 4 (-1.0 -> -2.0); unseen 1 and 2 unchanged; each id once although
        // 0 and 3 occur twice
        assertArrayEquals(new float[] {1.0f, 1.0f, 0.5f, 1.5f, -2.0f}, out);
        assertArrayEquals(new float[] {2.0f, 1.0f, 0.5f, 3.0f, -1.0f}, LOGITS, "the input is not changed");
        // only seq[0..len) counts
        assertArrayEquals(new float[] {2.0f, 1.0f, 0.5f, 1.5f, -1.0f}, Sampler.process(LOGITS, seq, 1, controls(2.0, 0)));
    }

    @Test
    void repetitionPenaltyChangesTheGreedyChoice() {
        // 3 leads (3.0) but was seen: 3.0 / 2 = 1.5 < 2.0, so 0 wins
        Sampler s = new Sampler(controls(2.0, 0));
        assertEquals(0, s.next(LOGITS, new long[] {3}, 1));
        assertEquals(3, s.next(LOGITS, new long[] {1}, 1));
        assertEquals(3, new Sampler(controls(1.0, 0)).next(LOGITS, new long[] {3}, 1), "1 = off");
    }

    @Test
    void noRepeatNgramBansWhatWouldCompleteASeenNgram() {
        // bigrams seen: (1,3) (3,2) (2,1) (1,4); the text ends with 1, so 3 and 4 would repeat (1,3) and (1,4)
        long[] seq = {1, 3, 2, 1, 4, 9, 1};
        float[] out = Sampler.process(LOGITS, seq, seq.length, controls(1.0, 2));
        assertEquals(Float.NEGATIVE_INFINITY, out[3]);
        assertEquals(Float.NEGATIVE_INFINITY, out[4]);
        assertEquals(2.0f, out[0]);
        assertEquals(1.0f, out[1]);
        assertEquals(0.5f, out[2]);
        assertEquals(0, new Sampler(controls(1.0, 2)).next(LOGITS, seq, seq.length));
    }

    @Test
    void noRepeatTrigramsNeedTheLastTwoIds() {
        // trigram (3, 2, 0) seen; the text ends with 3, 2: 0 is banned; (2, 3) never occurred before
        long[] seq = {3, 2, 0, 2, 3, 2};
        float[] out = Sampler.process(LOGITS, seq, seq.length, controls(1.0, 3));
        assertEquals(Float.NEGATIVE_INFINITY, out[0]);
        assertEquals(3.0f, out[3]);
        // a text shorter than n - 1 bans nothing
        assertArrayEquals(LOGITS, Sampler.process(LOGITS, seq, 1, controls(1.0, 3)));
        // n = 1 bans every id already present
        float[] uni = Sampler.process(LOGITS, new long[] {3, 0}, 2, controls(1.0, 1));
        assertEquals(Float.NEGATIVE_INFINITY, uni[3]);
        assertEquals(Float.NEGATIVE_INFINITY, uni[0]);
        assertEquals(1, new Sampler(controls(1.0, 1)).next(LOGITS, new long[] {3, 0}, 2));
    }

    @Test
    void sampledChoicesNeverPickABannedId() {
        for (long seed = 0; seed < 200; seed++) {
            Sampler s = new Sampler(new GenerationParams(1, 5.0, 0, 1, seed, 1.0, 1));
            int next = s.next(LOGITS, new long[] {3, 0, 1}, 3);
            assertTrue(next == 2 || next == 4, "got " + next);
        }
    }
}
