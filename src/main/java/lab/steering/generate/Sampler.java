package lab.steering.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy, or temperature with top-k and top-p, from a seeded generator; with the
 * repetition controls of {@link GenerationParams} applied first, as Hugging Face's logits processors do (repetition
 * penalty, then the n-gram ban, then temperature and the top-k / top-p warpers).
 */
public final class Sampler {

    private final GenerationParams params;
    private final SplittableRandom random;

    public Sampler(GenerationParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    /** Index of the largest logit (the first on ties, as torch.argmax). */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** log softmax(logits)[index], computed in double. */
    public static double logProb(float[] logits, int index) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        return logits[index] - max - Math.log(sum);
    }

    /**
     * The next token after {@code seq[0..len)} (prompt and generated so far). The log-probability a run reports stays
     * the model's own ({@link #logProb} of the unprocessed logits).
     */
    public int next(float[] logits, long[] seq, int len) {
        return next(params.controlsRepetition() ? process(logits, seq, len, params) : logits);
    }

    /**
     * The logits after the repetition penalty and the n-gram ban, on a copy. Penalty: every id present in the
     * text, counted once, gets {@code l / p} when {@code l > 0} and {@code l * p} otherwise (HF
     * RepetitionPenaltyLogitsProcessor). Ban: with n = noRepeatNgramSize and {@code len + 1 >= n}, every id that
     * followed an earlier occurrence of the last n - 1 ids is set to minus infinity (HF NoRepeatNGramLogitsProcessor).
     */
    public static float[] process(float[] logits, long[] seq, int len, GenerationParams params) {
        float[] out = logits.clone();
        double penalty = params.repetitionPenalty();
        if (penalty != 1.0) {
            boolean[] seen = new boolean[out.length];
            for (int i = 0; i < len; i++) {
                int id = (int) seq[i];
                if (id >= 0 && id < out.length && !seen[id]) {
                    seen[id] = true;
                    out[id] = (float) (out[id] > 0 ? out[id] / penalty : out[id] * penalty);
                }
            }
        }
        int n = params.noRepeatNgramSize();
        if (n > 0 && len + 1 >= n) {
            int start = len - (n - 1); // the prefix the next id would complete: seq[start..len)
            for (int i = 0; i + n <= len; i++) {
                boolean match = true;
                for (int j = 0; j < n - 1 && match; j++) {
                    match = seq[i + j] == seq[start + j];
                }
                int banned = (int) seq[i + n - 1];
                if (match && banned >= 0 && banned < out.length) {
                    out[banned] = Float.NEGATIVE_INFINITY;
                }
            }
        }
        return out;
    }

    public int next(float[] logits) {
        if (params.isGreedy()) {
            return argmax(logits);
        }
        int n = logits.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        int keep = params.topK() > 0 ? Math.min(params.topK(), n) : n;
        double max = logits[order[0]] / params.temperature();
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp(logits[order[i]] / params.temperature() - max);
            sum += p[i];
        }
        if (params.topP() < 1) {
            double cum = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++) {
                cum += p[i] / sum;
                if (cum >= params.topP()) {
                    cut = i + 1;
                    break;
                }
            }
            keep = cut;
            sum = 0;
            for (int i = 0; i < keep; i++) {
                sum += p[i];
            }
        }
        double u = random.nextDouble() * sum;
        for (int i = 0; i < keep; i++) {
            u -= p[i];
            if (u < 0) {
                return order[i];
            }
        }
        return order[keep - 1];
    }
}
