package lab.steering.generate;

/**
 * How to continue a prompt.
 *
 * @param maxNewTokens      at least 1
 * @param temperature       0 = greedy; otherwise logits are divided by it before sampling
 * @param topK              keep the k most likely tokens (0 = all)
 * @param topP              keep the smallest set whose probability reaches p (1 = all)
 * @param seed              random seed: the same seed gives the same text
 * @param repetitionPenalty Hugging Face's {@code repetition_penalty}: the logit of every id already in the text
 *                          (prompt and generated) is divided by it when positive and multiplied by it when negative,
 *                          before temperature, top-k and top-p; 1 = off
 * @param noRepeatNgramSize Hugging Face's {@code no_repeat_ngram_size}: an id that would complete an n-gram already in
 *                          the text (prompt and generated) is never chosen; 0 = off
 */
public record GenerationParams(int maxNewTokens, double temperature, int topK, double topP, long seed,
                               double repetitionPenalty, int noRepeatNgramSize) {

    /** Without repetition controls. */
    public GenerationParams(int maxNewTokens, double temperature, int topK, double topP, long seed) {
        this(maxNewTokens, temperature, topK, topP, seed, 1.0, 0);
    }

    public static GenerationParams greedy(int maxNewTokens) {
        return new GenerationParams(maxNewTokens, 0, 0, 1, 0);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    /** True when the logits are changed before choosing (a repetition penalty or an n-gram ban is set). */
    public boolean controlsRepetition() {
        return repetitionPenalty != 1.0 || noRepeatNgramSize > 0;
    }

    /** The same settings with another number of new tokens. */
    public GenerationParams withMaxNewTokens(int n) {
        return new GenerationParams(n, temperature, topK, topP, seed, repetitionPenalty, noRepeatNgramSize);
    }
}
