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
 * Keys and values of every layer for the tokens seen so far, in preallocated buffers that are written in
 * place, so that a decoding step costs the same whatever the context length (up to attention's own O(T)).
 * Owns its arrays through its own manager; close it when the sequence is done.
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final int batch;
    private final int kvHeads;
    private final int headDim;
    private final DataType dtype;
    private final NDArray[] keys;   // per layer (batch, kvHeads, capacity, headDim)
    private final NDArray[] values; // per layer (batch, kvHeads, capacity, headDim)
    private int capacity;
    private int length;

    public KvCache(NDManager parent, ModelConfig c, int batch, int capacity, DataType dtype) {
        this.manager = parent.newSubManager();
        this.batch = batch;
        this.kvHeads = c.numKvHeads();
        this.headDim = c.headDim();
        this.dtype = dtype;
        this.keys = new NDArray[c.numLayers()];
        this.values = new NDArray[c.numLayers()];
        this.capacity = Math.max(1, capacity);
        for (int l = 0; l < keys.length; l++) {
            keys[l] = buffer(this.capacity);
            values[l] = buffer(this.capacity);
        }
    }

    private NDArray buffer(int cap) {
        NDArray a = manager.zeros(new Shape(batch, kvHeads, cap, headDim), dtype);
        NDScope.unregister(a);
        return a;
    }

    /** Tokens already cached: the position of the next token. */
    public int length() {
        return length;
    }

    /**
     * Writes this call's keys and values (batch, kvHeads, t, headDim) of one layer after the cached ones and
     * returns views of all of them: {@code [keys, values]}, each (batch, kvHeads, length + t, headDim).
     */
    public NDArray[] append(int layer, NDArray k, NDArray v) {
        int t = (int) k.getShape().get(2);
        int end = length + t;
        if (end > capacity) {
            grow(end);
        }
        // the engine's slice calls: this runs twice per layer and token, and NDIndex set/get cost twice as much
        long[] from = {0, 0, length, 0};
        long[] to = {batch, kvHeads, end, headDim};
        long[] step = {1, 1, 1, 1};
        JniUtils.indexSet((PtNDArray) keys[layer], (PtNDArray) k, from, to, step);
        JniUtils.indexSet((PtNDArray) values[layer], (PtNDArray) v, from, to, step);
        return new NDArray[] {upTo(keys[layer], end), upTo(values[layer], end)};
    }

    /** Views of layer {@code layer}'s cached keys and values, {@code [keys, values]}, each (batch, kvHeads, length, headDim). */
    public NDArray[] view(int layer) {
        return new NDArray[] {upTo(keys[layer], length), upTo(values[layer], length)};
    }

    /** The view {@code buffer[:, :, :end, :]}, in the caller's scope. */
    private static NDArray upTo(NDArray buffer, int end) {
        return JniUtils.slice((PtNDArray) buffer, 2, 0, end, 1);
    }

    /** Called once per forward call after every layer has appended {@code t} tokens. */
    public void advance(int t) {
        length += t;
    }

    private void grow(int needed) {
        int cap = Math.max(needed, capacity * 2);
        NDIndex old = new NDIndex(":, :, :{}, :", length);
        for (int l = 0; l < keys.length; l++) {
            NDArray k = buffer(cap);
            NDArray v = buffer(cap);
            if (length > 0) {
                k.set(old, keys[l].get(old));
                v.set(old, values[l].get(old));
            }
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
