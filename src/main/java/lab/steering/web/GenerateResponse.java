package lab.steering.web;

import java.util.List;

/** Body returned by POST /api/generate. */
public record GenerateResponse(String model, List<PromptToken> promptTokens, String completion,
                               List<Token> tokens, String finishReason, long seed, Timings timings, Long runId) {

    public record PromptToken(long id, String text) {
    }

    public record Token(long id, String text, double logprob) {
    }

    public record Timings(double promptMs, double perTokenMs) {
    }
}
