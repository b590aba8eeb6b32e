package lab.steering.generate;

/**
 * How to continue a prompt.
 *
 * @param maxNewTokens at least 1
 * @param temperature  0 = greedy; otherwise logits are divided by it before sampling
 * @param topK         keep the k most likely tokens (0 = all)
 * @param topP         keep the smallest set whose probability reaches p (1 = all)
 * @param seed         random seed: the same seed gives the same text
 */
public record GenerationParams(int maxNewTokens, double temperature, int topK, double topP, long seed) {

    public static GenerationParams greedy(int maxNewTokens) {
        return new GenerationParams(maxNewTokens, 0, 0, 1, 0);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }
}
