package lab.steering.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Picks the next token from logits: greedy, or temperature with top-k and top-p, from a seeded generator. */
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
