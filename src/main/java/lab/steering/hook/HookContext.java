package lab.steering.hook;

/**
 * The positions a forward call covers: tokens {@code start .. start + length - 1} of the sequence
 * (with a KV cache, {@code start} is the number of tokens already cached).
 */
public record HookContext(int start, int length) {
}
