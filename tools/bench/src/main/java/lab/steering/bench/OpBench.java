package lab.steering.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.jni.JniUtils;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import lab.steering.model.Threads;

/**
 * The ops of one decoding step of the default model (d = 256, 688-wide MLP, 8 heads on 4 kv heads, 74 keys), timed
 * with the engine's intra-op threads and with one, in one run: why {@link Threads} decodes on one thread.
 * {@code scripts/bench.sh ops}.
 */
public final class OpBench {

    private OpBench() {
    }

    public static void main(String[] args) {
        int engine = Threads.engine();
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray x = m.randomNormal(new Shape(1, 1, 256));
            NDArray w = m.randomNormal(new Shape(256, 256));
            NDArray wUp = m.randomNormal(new Shape(688, 256));
            NDArray qg = m.randomNormal(new Shape(1, 4, 2, 32));
            NDArray kT = m.randomNormal(new Shape(1, 4, 32, 74));
            NDArray scores = m.randomNormal(new Shape(1, 4, 2, 74));
            Map<String, Supplier<NDArray>> ops = new LinkedHashMap<>();
            ops.put("linear 256 -> 256", () -> Linear.linear(x, w).singletonOrThrow());
            ops.put("linear 256 -> 688", () -> Linear.linear(x, wUp).singletonOrThrow());
            ops.put("matmul q k^T (4 kv heads, 74 keys)", () -> qg.matMul(kT));
            ops.put("softmax (4 x 2 x 74)", () -> scores.softmax(-1));
            ops.put("add (256)", () -> x.add(x));
            System.out.printf("| op (one token) | %d threads (us) | 1 thread (us) |%n|---|---|---|%n", engine);
            for (Map.Entry<String, Supplier<NDArray>> op : ops.entrySet()) {
                double many = time(op.getValue(), engine);
                double one = time(op.getValue(), 1);
                System.out.printf("| %s | %.1f | %.1f |%n", op.getKey(), many, one);
            }
        } finally {
            JniUtils.setNumThreads(engine);
        }
    }

    /** Microseconds per call, best of 3 passes of 2,000 calls after 1,000 warm-up calls. */
    private static double time(Supplier<NDArray> op, int threads) {
        JniUtils.setNumThreads(threads);
        run(op, 1000);
        double best = Double.MAX_VALUE;
        for (int pass = 0; pass < 3; pass++) {
            long t0 = System.nanoTime();
            run(op, 2000);
            best = Math.min(best, (System.nanoTime() - t0) / 1e3 / 2000);
        }
        return best;
    }

    private static void run(Supplier<NDArray> op, int calls) {
        for (int i = 0; i < calls; i++) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                op.get();
            }
        }
    }
}
