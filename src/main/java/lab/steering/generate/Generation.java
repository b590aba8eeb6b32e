package lab.steering.generate;

import java.util.List;

/**
 * The outcome of one generation.
 *
 * @param promptIds    prompt token ids, BOS included when the tokenizer adds it
 * @param promptPieces text of each prompt token
 * @param tokens       the generated tokens (the EOS token that stopped it included)
 * @param completion   the generated text, special tokens dropped
 * @param promptMs     time of the prompt pass (prefill)
 * @param perTokenMs   mean time per generated token after the first
 */
public record Generation(long[] promptIds, String[] promptPieces, List<GeneratedToken> tokens, String completion,
                         FinishReason finishReason, double promptMs, double perTokenMs) {

    public enum FinishReason {
        /** the model produced an end-of-sequence token */
        eos,
        /** maxNewTokens were generated */
        length,
        /** the model's context is full */
        context
    }
}
