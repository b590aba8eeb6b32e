package lab.steering.generate;

/**
 * One generated token.
 *
 * @param logprob the model's log-probability of the token (log softmax of the raw logits, temperature 1)
 */
public record GeneratedToken(long id, String text, double logprob) {
}
