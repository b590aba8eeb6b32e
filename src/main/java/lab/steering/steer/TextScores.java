package lab.steering.steer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

/**
 * The text-only scores of a steered continuation, each a plain function of its inputs (the model-based ones,
 * perplexity and log-probabilities, come from {@link SteeredRun}). Words are runs of letters, lower-cased.
 * <ul>
 *   <li>{@link #conceptHits}: how many of the text's words are concept words (every occurrence counts);</li>
 *   <li>{@link #distinct2}: distinct word bigrams / word bigrams (1 = no bigram twice; 0 for under two words);</li>
 *   <li>{@link #repetitionRate}: the share of the text's word 4-grams that already occurred earlier in it
 *       (0 = none repeated; 0 for under four words);</li>
 *   <li>{@link #harmonicMean}: AxBench's aggregate, the harmonic mean of scores in [0, 1], 0 if any is 0;</li>
 *   <li>{@link #bootstrap}: a percentile bootstrap interval of a mean, over units (concepts), with a fixed seed.</li>
 * </ul>
 */
public final class TextScores {

    private TextScores() {
    }

    /** The words of a text in order: runs of letters, lower-cased. */
    public static List<String> words(String text) {
        List<String> out = new ArrayList<>();
        for (String w : text.toLowerCase(Locale.ROOT).split("[^\\p{L}]+")) {
            if (!w.isEmpty()) {
                out.add(w);
            }
        }
        return out;
    }

    /** Occurrences of concept words among the text's words (the concept words are compared lower-cased). */
    public static int conceptHits(String text, List<String> conceptWords) {
        Set<String> concept = new HashSet<>();
        conceptWords.forEach(w -> concept.add(w.toLowerCase(Locale.ROOT)));
        int hits = 0;
        for (String w : words(text)) {
            if (concept.contains(w)) {
                hits++;
            }
        }
        return hits;
    }

    /** Distinct word bigrams over all word bigrams. */
    public static double distinct2(String text) {
        List<String> w = words(text);
        if (w.size() < 2) {
            return 0;
        }
        Set<String> seen = new HashSet<>();
        for (int i = 0; i + 1 < w.size(); i++) {
            seen.add(w.get(i) + " " + w.get(i + 1));
        }
        return (double) seen.size() / (w.size() - 1);
    }

    /** Share of word 4-grams that occurred earlier in the same text. */
    public static double repetitionRate(String text) {
        List<String> w = words(text);
        int n = w.size() - 3;
        if (n <= 0) {
            return 0;
        }
        Set<List<String>> seen = new HashSet<>();
        int repeated = 0;
        for (int i = 0; i < n; i++) {
            if (!seen.add(List.copyOf(w.subList(i, i + 4)))) {
                repeated++;
            }
        }
        return (double) repeated / n;
    }

    /** Harmonic mean of scores in [0, 1]; 0 when any is 0 (or there are none). */
    public static double harmonicMean(double... scores) {
        if (scores.length == 0) {
            return 0;
        }
        double inv = 0;
        for (double s : scores) {
            if (!(s >= 0 && s <= 1)) {
                throw new IllegalArgumentException("scores must be in [0, 1], got " + s);
            }
            if (s == 0) {
                return 0;
            }
            inv += 1 / s;
        }
        return scores.length / inv;
    }

    /** A mean with its percentile bootstrap interval. */
    public record Interval(double mean, double low, double high) {
    }

    /**
     * The mean of {@code value} over {@code units} and its {@code level} (e.g. 0.95) percentile bootstrap interval:
     * {@code resamples} resamples of the units with replacement, drawn from {@code seed}, so that a run reproduces.
     */
    public static <T> Interval bootstrap(List<T> units, ToDoubleFunction<T> value, int resamples, double level,
                                         long seed) {
        if (units.isEmpty()) {
            return new Interval(Double.NaN, Double.NaN, Double.NaN);
        }
        double[] v = units.stream().mapToDouble(value).toArray();
        double mean = Arrays.stream(v).average().orElse(Double.NaN);
        SplittableRandom random = new SplittableRandom(seed);
        double[] means = new double[resamples];
        for (int r = 0; r < resamples; r++) {
            double sum = 0;
            for (int i = 0; i < v.length; i++) {
                sum += v[random.nextInt(v.length)];
            }
            means[r] = sum / v.length;
        }
        Arrays.sort(means);
        double tail = (1 - level) / 2;
        return new Interval(mean, quantile(means, tail), quantile(means, 1 - tail));
    }

    /** The q-quantile of sorted values, linear between order statistics (numpy's default). */
    static double quantile(double[] sorted, double q) {
        double pos = q * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(sorted.length - 1, lo + 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
