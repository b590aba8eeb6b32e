package lab.steering.web;

/**
 * Body of POST /api/generate. Absent fields take their defaults.
 *
 * @param model        model id (default: the app's default model)
 * @param prompt       text to continue (required, not empty)
 * @param maxNewTokens 1..1024, default 32
 * @param temperature  0 = greedy (default); > 0 samples
 * @param topK         0 = off (default)
 * @param topP         (0, 1], default 1 = off
 * @param seed         default: random, returned in the response
 * @param repetitionPenalty Hugging Face's repetition_penalty, in (0, 10]; default 1 = off
 * @param noRepeatNgramSize Hugging Face's no_repeat_ngram_size, 0..32; default 0 = off
 */
public record GenerateRequest(String model, String prompt, Integer maxNewTokens, Double temperature, Integer topK,
                              Double topP, Long seed, Double repetitionPenalty, Integer noRepeatNgramSize) {

    /** Without repetition controls. */
    public GenerateRequest(String model, String prompt, Integer maxNewTokens, Double temperature, Integer topK,
                           Double topP, Long seed) {
        this(model, prompt, maxNewTokens, temperature, topK, topP, seed, null, null);
    }
}
