package lab.steering.hook;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * A hook that a batched decoding step can apply to many rows in one go: at a site, the rows whose hook there has the
 * same {@link #batchKey} are handed over together, so that, say, every steered row's operator slice is gathered and
 * applied in one batched product instead of one product per row. {@link #apply} remains the one-sequence form, and
 * both must give each row the same numbers (up to the order of float sums).
 */
public interface RowBatchHook extends Hook {

    /** Hooks with equal keys can run together (their class, dtype and shapes, say). */
    Object batchKey();

    /**
     * Applies {@code hooks} (all of one key, {@code hooks.get(i)} owning row {@code rows[i]} of {@code x}) to one
     * decoding step of a batch.
     *
     * @param x         (batch, 1, d) the whole batch at this site
     * @param rows      the rows of {@code x} these hooks own, one per hook
     * @param positions the position of each of those rows' token in its own sequence
     * @return the batch with those rows changed and every other row as it was (x itself when nothing changes)
     */
    NDArray applyRows(List<? extends RowBatchHook> hooks, NDArray x, int[] rows, int[] positions);
}
