package lab.steering.generate;

import ai.djl.ndarray.NDManager;
import lab.steering.hook.Hooks;

/**
 * One client's decoding as a state machine that a driver advances: {@link DecodeDriver#alone} runs it by itself
 * (the reference), {@link BatchDecoder} runs it as rows of a batched step beside other clients' decodings. A decoding
 * has one or more rows that share the prompt and are fed the same token each step (a steered run and the unsteered
 * model on its prefix); each row has its own hooks and KV cache. The driver calls, on its one thread:
 * {@link #start}, the prompt's forward of every row, {@link #prompted}, then {@link #next} and, while it returns a
 * token, that token's forward of every row and {@link #stepped}; finally {@link #close}.
 */
public interface Decode extends AutoCloseable {

    /** The prompt's ids (at least one). */
    long[] prompt();

    /** How many rows; {@link #start} returns that many hooks. */
    int rows();

    /**
     * Makes the rows' hooks (steering arrays are made in {@code m}, which the driver closes after {@link #close}).
     * Called on the driving thread, before any forward.
     */
    Hooks[] start(NDManager m);

    /** The logits (float32, vocab) of the prompt's last position, per row. */
    void prompted(float[][] logits);

    /**
     * Samples the next token and records it (streaming listeners see it now).
     *
     * @return the token every row feeds next, or -1 when the decoding has ended (this token was its last)
     */
    long next();

    /**
     * The logits after feeding the token {@link #next} returned, per row, and what each row's forward cost in
     * nanoseconds: run alone, its own forward's wall time; in a batch, the step's wall time less the time every other
     * row's hooks took (so that a steered row and its unsteered twin differ by what the steering costs).
     */
    void stepped(float[][] logits, long[] rowNanos);

    /** Asks the driver to drop the decoding at its next step (its client went away, its job was cancelled). */
    void cancel();

    /** True once {@link #cancel} was called. */
    boolean cancelled();

    /** Frees what the decoding holds outside the driver's manager (nothing by default). */
    @Override
    default void close() {
    }
}
