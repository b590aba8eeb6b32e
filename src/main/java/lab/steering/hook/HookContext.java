package lab.steering.hook;

/**
 * The positions a forward call covers: tokens {@code start .. start + length - 1} of the sequence
 * (with a KV cache, {@code start} is the number of tokens already cached).
 *
 * @param tokenIds the ids of the tokens of this call (first batch row)
 */
public record HookContext(int start, int length, long[] tokenIds) {
}
