package lab.steering.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/**
 * PyTorch's intra-op threads of the calling thread on a CPU. A decoding step over one token is a few hundred tiny
 * ops; with two OpenMP threads each parallel op pays a wake-up of the other thread that costs more than the op (a
 * 256 x 256 matrix-vector product: 33 us on two threads, 13 us on one), so such steps run on one thread, while
 * prompts, Jacobians and re-encoding run on the engine's threads ({@code ai.djl.pytorch.num_threads}, default all
 * cores). The count is PyTorch's per-thread setting (OpenMP's nthreads ICV and MKL's thread-local count), changed
 * only when it differs from what this thread last set.
 *
 * <p>{@code LAB_DECODE_THREADS} (or {@code -Dlab.decode-threads}) overrides the decoding count; 0 keeps the engine's.
 */
public final class Threads {

    /** Steps of at most this many tokens count as decoding steps. */
    public static final int SMALL_STEP_TOKENS = 4;

    private static final int ENGINE = engineThreads();
    private static final int DECODE = decodeThreads();
    private static final ThreadLocal<Integer> CURRENT = new ThreadLocal<>();

    private Threads() {
    }

    /** Threads for a forward step over {@code tokens} tokens on {@code device}. */
    public static void forStep(Device device, long tokens) {
        if (device.isGpu()) {
            return;
        }
        set(tokens <= SMALL_STEP_TOKENS ? DECODE : ENGINE);
    }

    /** The engine's threads again (heavy work: Jacobians, analyses). */
    public static void full() {
        set(ENGINE);
    }

    /** The engine's intra-op thread count. */
    public static int engine() {
        return ENGINE;
    }

    /** The thread count of decoding steps on a CPU. */
    public static int decode() {
        return DECODE;
    }

    private static void set(int n) {
        Integer now = CURRENT.get();
        if (now == null || now != n) {
            JniUtils.setNumThreads(n);
            CURRENT.set(n);
        }
    }

    private static int engineThreads() {
        Engine.getEngine("PyTorch"); // loads the natives and applies ai.djl.pytorch.num_threads
        return Math.max(1, JniUtils.getNumThreads());
    }

    private static int decodeThreads() {
        String v = System.getProperty("lab.decode-threads", System.getenv("LAB_DECODE_THREADS"));
        if (v == null || v.isBlank()) {
            return 1;
        }
        try {
            int n = Integer.parseInt(v.trim());
            return n <= 0 ? ENGINE : n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("LAB_DECODE_THREADS must be a whole number, got '" + v + "'", e);
        }
    }
}
