package lab.steering.web;

import lab.steering.service.Refusal;
import lab.steering.service.generation.GenerationService;

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

    /** The request's shape (400 missing_body, invalid_FIELD) as the service's spec; at most {@code maxNewTokens}. */
    static GenerationService.Spec spec(GenerateRequest req, int maxNewTokens) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        if (req.prompt() == null || req.prompt().isEmpty()) {
            throw Refusal.invalidField("prompt", "must not be empty");
        }
        return new GenerationService.Spec(req.model(), req.prompt(), SteeringRequests.params(req.maxNewTokens(), 32,
                maxNewTokens, req.temperature(), req.topK(), req.topP(), req.seed(), req.repetitionPenalty(),
                req.noRepeatNgramSize()));
    }
}
