package lab.steering.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

/**
 * Keys and values of the rows of a batched decoding ({@link Transformer#forwardRows}): one slot per row, each row at
 * its own length. A slot's keys sit at the columns of their positions, so a row's cached keys are those its own
 * unbatched {@link KvCache} would hold; columns past a row's length hold stale values that the row's attention mask
 * hides (their probabilities are exactly 0). The rows of a step are always slots {@code 0 .. rows - 1}: a row that
 * leaves is replaced by the last one ({@link #move}), so that a step reads plain views of the buffers.
 * Owns its arrays through its own manager; close it when the decoder stops.
 */
public final class RowCache implements AutoCloseable {

    private final NDManager manager;
    private final int slots;
    private final int kvHeads;
    private final int headDim;
    private final DataType dtype;
    private final NDArray[] keys;   // per layer (slots, kvHeads, capacity, headDim)
    private final NDArray[] values; // per layer (slots, kvHeads, capacity, headDim)
    private final int[] lengths;
    private int capacity;

    public RowCache(NDManager parent, ModelConfig c, int slots, int capacity, DataType dtype) {
        this.manager = parent.newSubManager();
        this.slots = slots;
        this.kvHeads = c.numKvHeads();
        this.headDim = c.headDim();
        this.dtype = dtype;
        this.keys = new NDArray[c.numLayers()];
        this.values = new NDArray[c.numLayers()];
        this.lengths = new int[slots];
        this.capacity = Math.max(1, capacity);
        for (int l = 0; l < keys.length; l++) {
            keys[l] = buffer(this.capacity);
            values[l] = buffer(this.capacity);
        }
    }

    private NDArray buffer(int cap) {
        NDArray a = manager.zeros(new Shape(slots, kvHeads, cap, headDim), dtype);
        NDScope.unregister(a);
        return a;
    }

    public int slots() {
        return slots;
    }

    /** Tokens cached in {@code slot}: the position of its next token. */
    public int length(int slot) {
        return lengths[slot];
    }

    /** The longest of slots {@code 0 .. rows - 1}. */
    public int maxLength(int rows) {
        int max = 0;
        for (int r = 0; r < rows; r++) {
            max = Math.max(max, lengths[r]);
        }
        return max;
    }

    /** Copies a one-row cache (a prompt's forward) into {@code slot}, which then has that cache's length. */
    public void load(int slot, KvCache one) {
        load(slot, one, 0, one.length());
    }

    /**
     * Copies row {@code row} of {@code from} (prompts' forward, padded on the right to a common length), its first
     * {@code len} positions, into {@code slot}, which then has length {@code len}.
     */
    public void load(int slot, KvCache from, int row, int len) {
        ensure(len);
        long[] a = {slot, 0, 0, 0};
        long[] b = {slot + 1, kvHeads, len, headDim};
        long[] step = {1, 1, 1, 1};
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            for (int l = 0; l < keys.length; l++) {
                NDArray[] kv = from.view(l);
                JniUtils.indexSet((PtNDArray) keys[l], (PtNDArray) row(kv[0], row, len), a, b, step);
                JniUtils.indexSet((PtNDArray) values[l], (PtNDArray) row(kv[1], row, len), a, b, step);
            }
        }
        lengths[slot] = len;
    }

    /** Moves slot {@code from}'s keys, values and length to slot {@code to} (a row left; the last one fills its place). */
    public void move(int from, int to) {
        if (from == to) {
            return;
        }
        int len = lengths[from];
        if (len > 0) {
            long[] a = {to, 0, 0, 0};
            long[] b = {to + 1, kvHeads, len, headDim};
            long[] step = {1, 1, 1, 1};
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                for (int l = 0; l < keys.length; l++) {
                    JniUtils.indexSet((PtNDArray) keys[l], (PtNDArray) row(keys[l], from, len), a, b, step);
                    JniUtils.indexSet((PtNDArray) values[l], (PtNDArray) row(values[l], from, len), a, b, step);
                }
            }
        }
        lengths[to] = len;
        lengths[from] = 0;
    }

    /** Empties {@code slot}. */
    public void clear(int slot) {
        lengths[slot] = 0;
    }

    /** {@code buffer[slot:slot+1, :, :len, :]}. */
    private static NDArray row(NDArray buffer, int slot, int len) {
        NDArray one = JniUtils.slice((PtNDArray) buffer, 0, slot, slot + 1, 1);
        return JniUtils.slice((PtNDArray) one, 2, 0, len, 1);
    }

    /**
     * Writes one new key and value per row, (rows, kvHeads, 1, headDim), at each row's length, and returns views of
     * slots {@code 0 .. rows - 1} up to the longest row after the write: {@code [keys, values]}, each
     * (rows, kvHeads, maxLength + 1, headDim). One indexed write per tensor: {@code buffer[row[i], :, at[i], :] =
     * k[i, :, 0, :]}, with {@code row} and {@code at} from {@link #writeIndex}.
     */
    public NDArray[] append(int layer, NDArray k, NDArray v, NDIndex at) {
        int rows = (int) k.getShape().get(0);
        int end = maxLength(rows) + 1;
        ensure(end);
        Shape flat = new Shape(rows, kvHeads, headDim);
        JniUtils.indexAdvPut((PtNDArray) keys[layer], at, (PtNDArray) k.reshape(flat));
        JniUtils.indexAdvPut((PtNDArray) values[layer], at, (PtNDArray) v.reshape(flat));
        return new NDArray[] {upTo(keys[layer], rows, end), upTo(values[layer], rows, end)};
    }

    /** The index of {@link #append} for slots {@code 0 .. rows - 1} at their lengths, its arrays made in {@code m}. */
    public NDIndex writeIndex(NDManager m, int rows) {
        long[] row = new long[rows];
        long[] at = new long[rows];
        for (int r = 0; r < rows; r++) {
            row[r] = r;
            at[r] = lengths[r];
        }
        return new NDIndex("{}, :, {}", m.create(row), m.create(at));
    }

    /** After every layer appended: each of the first {@code rows} slots is one token longer. */
    public void advance(int rows) {
        for (int r = 0; r < rows; r++) {
            lengths[r]++;
        }
    }

    private static NDArray upTo(NDArray buffer, int rows, int end) {
        NDArray first = JniUtils.slice((PtNDArray) buffer, 0, 0, rows, 1);
        return JniUtils.slice((PtNDArray) first, 2, 0, end, 1);
    }

    /** Grows every buffer (keeping what it holds) so that {@code needed} columns fit. */
    private void ensure(int needed) {
        if (needed <= capacity) {
            return;
        }
        int cap = Math.max(needed, capacity * 2);
        long[] from = {0, 0, 0, 0};
        long[] to = {slots, kvHeads, capacity, headDim};
        long[] step = {1, 1, 1, 1};
        for (int l = 0; l < keys.length; l++) {
            NDArray k = buffer(cap);
            NDArray v = buffer(cap);
            JniUtils.indexSet((PtNDArray) k, (PtNDArray) keys[l], from, to, step);
            JniUtils.indexSet((PtNDArray) v, (PtNDArray) values[l], from, to, step);
            keys[l].close();
            values[l].close();
            keys[l] = k;
            values[l] = v;
        }
        capacity = cap;
    }

    @Override
    public void close() {
        manager.close();
    }
}
