package lab.steering.service.comparison;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The default batch and the summary statistics, without the app. */
class ComparisonServiceTest {

    @Test
    void theDefaultBatchIsAHundredDistinctShortEverydayPhrases() {
        List<String> p = new ComparisonService().defaultPhrases();
        assertEquals(100, p.size());
        assertEquals(100, new HashSet<>(p).size(), "no phrase twice");
        for (String s : p) {
            int words = s.split("\\s+").length;
            assertTrue(words >= 2 && words <= 12, "short: '" + s + "'");
            assertTrue(s.chars().allMatch(c -> c >= 32 && c < 127), "plain ASCII: '" + s + "'");
            assertEquals(s.strip(), s);
        }
    }

    @Test
    void statsGiveNumpysPercentiles() {
        // numpy 2.4.6: np.percentile(a, [0, 25, 50, 75, 100]) and np.mean(a)
        ComparisonService.Stats s = ComparisonService.Stats.of(new double[]{3.2, 1.5, 7.25, 4.0, 2.75, 9.5, 6.125});
        assertEquals(7, s.count());
        assertEquals(1.5, s.min(), 1e-12);
        assertEquals(2.975, s.q1(), 1e-12);
        assertEquals(4.0, s.median(), 1e-12);
        assertEquals(6.6875, s.q3(), 1e-12);
        assertEquals(9.5, s.max(), 1e-12);
        assertEquals(4.903571428571429, s.mean(), 1e-12);
        ComparisonService.Stats two = ComparisonService.Stats.of(new double[]{2.0, 1.0});
        assertEquals(1.25, two.q1(), 1e-12);
        assertEquals(1.5, two.median(), 1e-12);
        assertEquals(1.75, two.q3(), 1e-12);
        ComparisonService.Stats one = ComparisonService.Stats.of(new double[]{5.0});
        assertEquals(5.0, one.q1(), 0);
        assertEquals(5.0, one.q3(), 0);
        assertEquals(0, ComparisonService.Stats.of(new double[0]).count());
    }
}
