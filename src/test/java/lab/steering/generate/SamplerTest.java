package lab.steering.generate;

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
}
