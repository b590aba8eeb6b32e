package lab.steering.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class NgramBaselineTest {

    // train 0 1 0 1 2 (V = 3): c = {2, 2, 1}, N = 5; bigrams 01 x2, 10, 12; histories c(0) = 2, c(1) = 2
    static final int[] TRAIN = {0, 1, 0, 1, 2};
    // eval 0 1 2: targets 1 (after 0) and 2 (after 1)
    static final int[] EVAL = {0, 1, 2};

    @Test
    void unigramAddOne() {
        // p(1) = 3/8, p(2) = 2/8: ppl = (3/8 * 2/8)^(-1/2) = 8 / sqrt(6)
        assertEquals(8 / Math.sqrt(6), new NgramBaseline.Counts(TRAIN, 3).unigramPpl(EVAL), 1e-12);
    }

    @Test
    void bigramJelinekMercer() {
        // lambda 0.5: p(1|0) = 0.5 * 2/2 + 0.5 * 3/8 = 0.6875; p(2|1) = 0.5 * 1/2 + 0.5 * 2/8 = 0.375
        assertEquals(1 / Math.sqrt(0.6875 * 0.375), new NgramBaseline.Counts(TRAIN, 3).jmPpl(EVAL, 0.5), 1e-12);
    }

    @Test
    void bigramKneserNey() {
        // D 0.5; N1+(..) = 3 distinct bigrams; every id has one distinct predecessor: p_cont = (1 + 1)/(3 + 3) = 1/3
        // p(1|0) = (2 - 0.5)/2 + 0.5 * 1/2 * 1/3 = 0.8333...; p(2|1) = (1 - 0.5)/2 + 0.5 * 2/2 * 1/3 = 0.41666...
        double p1 = 1.5 / 2 + 0.5 * 1 / 2 / 3.0;
        double p2 = 0.5 / 2 + 0.5 * 2 / 2 / 3.0;
        assertEquals(1 / Math.sqrt(p1 * p2), new NgramBaseline.Counts(TRAIN, 3).knPpl(EVAL, 0.5), 1e-12);
    }

    @Test
    void smoothedBigramsAreDistributions() {
        NgramBaseline.Counts c = new NgramBaseline.Counts(TRAIN, 3);
        for (int u = 0; u < 3; u++) {
            double jm = 0;
            double kn = 0;
            for (int w = 0; w < 3; w++) {
                jm += c.jmP(u, w, 0.3);
                kn += c.knP(u, w, 0.7);
            }
            assertEquals(1, jm, 1e-12, "JM after " + u);
            assertEquals(1, kn, 1e-12, "KN after " + u);
        }
    }
}
