package lab.steering.web;

import java.util.ArrayList;
import java.util.List;
import lab.steering.generate.Generation;
import lab.steering.service.generation.GenerationService;

/** Body returned by POST /api/generate. */
public record GenerateResponse(String model, List<PromptToken> promptTokens, String completion,
                               List<Token> tokens, String finishReason, long seed, Timings timings, Long runId) {

    public record PromptToken(long id, String text) {
    }

    public record Token(long id, String text, double logprob) {
    }

    public record Timings(double promptMs, double perTokenMs) {
    }

    /** The answer to a finished generation. */
    static GenerateResponse of(GenerationService.Result r) {
        Generation g = r.generation();
        List<PromptToken> prompt = new ArrayList<>();
        for (int i = 0; i < g.promptIds().length; i++) {
            prompt.add(new PromptToken(g.promptIds()[i], g.promptPieces()[i]));
        }
        return new GenerateResponse(r.model().id(), prompt, g.completion(),
                g.tokens().stream().map(t -> new Token(t.id(), t.text(), t.logprob())).toList(),
                g.finishReason().name(), r.params().seed(), new Timings(g.promptMs(), g.perTokenMs()), r.runId());
    }
}
