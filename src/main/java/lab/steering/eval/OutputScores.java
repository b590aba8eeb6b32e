package lab.steering.eval;

import java.util.List;
import lab.steering.steer.TextScores;

/**
 * The scores of one continuation in the steering benchmark, each a plain function of measured inputs (the model-based
 * measures, perplexity and concept log-probability, and the embeddings come from the caller). Formulas (docs/evaluation.md):
 * <ul>
 *   <li>concept: {@code hits} = occurrences of concept words ({@link TextScores#conceptHits});
 *       {@code conceptLogProb} = mean over generated positions of log sum_w p(first token of " w" | prefix) under the
 *       method's own (steered or prompted) model; {@code conceptSimilarity} = cos(e(text), e(concept prompt));</li>
 *   <li>fluency: {@code perplexity} under the unsteered model given the plain prompt, {@code repetition}
 *       ({@link TextScores#repetitionRate}), {@code distinct2} ({@link TextScores#distinct2});</li>
 *   <li>prompt relevance: {@code relevance} = cos(e(text), e(prompt));</li>
 *   <li>the three normalised components, each in [0, 1]:
 *       {@code C = (min(1, hits / 2) + max(0, conceptSimilarity)) / 2},
 *       {@code F = min(1, unsteeredPerplexity / perplexity) * (1 - repetition)} (unsteeredPerplexity: the unsteered
 *       continuation of the same prompt), {@code R = max(0, relevance)};</li>
 *   <li>{@code aggregate} = harmonic mean of C, F and R, 0 if any is 0 ({@link TextScores#harmonicMean}, as AxBench).</li>
 * </ul>
 * An empty continuation scores 0 on all three components.
 */
public record OutputScores(int hits, Double conceptLogProb, double conceptSimilarity, double perplexity,
                           double perplexityRatio, double repetition, double distinct2, double relevance,
                           double concept, double fluency, double promptRelevance, double aggregate) {

    /** Hits at which the hit half of C is full. */
    public static final int FULL_HITS = 2;

    /**
     * @param unsteeredPerplexity the perplexity of the unsteered continuation of the same prompt (F's reference)
     */
    public static OutputScores of(String text, List<String> conceptWords, Double conceptLogProb, double perplexity,
                                  double unsteeredPerplexity, double conceptSimilarity, double relevance) {
        if (!Double.isFinite(perplexity)) {
            perplexity = Double.MAX_VALUE; // stored as JSON, which has no infinity
        }
        int hits = TextScores.conceptHits(text, conceptWords);
        double repetition = TextScores.repetitionRate(text);
        double distinct2 = TextScores.distinct2(text);
        double ratio = perplexity / unsteeredPerplexity;
        boolean empty = text.isBlank();
        double c = empty ? 0 : concept(hits, conceptSimilarity);
        double f = empty ? 0 : fluency(perplexity, unsteeredPerplexity, repetition);
        double r = empty ? 0 : Math.max(0, Math.min(1, relevance));
        return new OutputScores(hits, conceptLogProb, conceptSimilarity, perplexity, ratio, repetition, distinct2,
                relevance, c, f, r, TextScores.harmonicMean(c, f, r));
    }

    /** C = (min(1, hits / 2) + max(0, similarity)) / 2. */
    public static double concept(int hits, double similarity) {
        return (Math.min(1.0, hits / (double) FULL_HITS) + Math.max(0, Math.min(1, similarity))) / 2;
    }

    /** F = min(1, unsteeredPerplexity / perplexity) * (1 - repetition). */
    public static double fluency(double perplexity, double unsteeredPerplexity, double repetition) {
        double p = perplexity > 0 && Double.isFinite(perplexity) ? Math.min(1, unsteeredPerplexity / perplexity) : 0;
        return Math.max(0, p * (1 - repetition));
    }
}
