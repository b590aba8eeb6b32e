package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Tensors live as long as their users need them. The forward pass keeps every tensor its backward pass needs alive: a gradient taken after the garbage collector has
 * run and fresh native memory has been filled with NaN equals the gradient taken at once. (DJL turns a Number operand
 * into a tensor over a direct buffer and closes it after the op; an autograd graph that saved that tensor read freed
 * memory, which gave wrong ordinary Jacobians whenever another thread allocated in between.) A dtype twin of the
 * weights built while a caller has an NDScope open outlives that scope.
 */
class TensorLifetimeTest {

    @TempDir
    static Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"llama", "gemma3_text", "gpt2", "qwen3"})
    void gradientIsTheSameAfterGarbageCollectionBetweenForwardAndBackward(String family) throws Exception {
        TinyCheckpoint ckpt = family.equals("llama") ? TinyCheckpoint.llama() : TinyCheckpoint.family(family);
        Path folder = ckpt.hidden(16).layers(2).heads(2).kvHeads(family.equals("gpt2") ? 2 : 1).intermediate(24)
                .vocab(32).seed(5).writeTo(tmp.resolve(family));
        try (LanguageModel model = LanguageModel.load(folder, Device.cpu())) {
            for (DataType dtype : new DataType[] {DataType.FLOAT64, DataType.FLOAT32}) {
                double[] atOnce = gradient(model.transformer(dtype), false);
                double[] afterGc = gradient(model.transformer(dtype), true);
                assertArrayEquals(atOnce, afterGc, 0.0, family + " " + dtype);
            }
        }
    }

    @Test
    void aDtypeTwinBuiltInsideAScopeOutlivesIt() throws Exception {
        Path folder = TinyCheckpoint.llama().hidden(16).layers(2).heads(2).kvHeads(1).intermediate(24).vocab(32)
                .seed(6).writeTo(tmp.resolve("twin"));
        try (LanguageModel model = LanguageModel.load(folder, Device.cpu())) {
            double[] first;
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                first = gradient(model.transformer(DataType.FLOAT64), false);
            }
            assertArrayEquals(first, gradient(model.transformer(DataType.FLOAT64), false), 0.0);
        }
    }

    /** d sum(output) / d embeddings of a fixed prompt; with {@code churn}, GC and NaN-filled allocations first. */
    private static double[] gradient(Transformer tf, boolean churn) throws InterruptedException {
        long[] ids = {1, 7, 3, 12, 30};
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray input = m.create(ids, new Shape(1, ids.length));
            NDArray[] embedded = new NDArray[1];
            tf.forward(input, null, Hooks.builder().add(Site.embed(), (s, x, c) -> embedded[0] = x).build());
            NDArray x = embedded[0].duplicate();
            x.setRequiresGradient(true);
            List<ByteBuffer> keep = new ArrayList<>();
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray y = tf.forward(input, null, Hooks.builder().add(Site.embed(), (s, h, c) -> x).build());
                if (churn) {
                    for (int round = 0; round < 3; round++) {
                        System.gc();
                        Thread.sleep(50); // the Cleaner thread frees unreachable direct buffers
                        for (int i = 0; i < 20_000; i++) {
                            ByteBuffer b = ByteBuffer.allocateDirect(i % 2 == 0 ? 8 : 4).order(ByteOrder.nativeOrder());
                            if (b.capacity() == 8) {
                                b.putDouble(0, Double.NaN);
                            } else {
                                b.putFloat(0, Float.NaN);
                            }
                            keep.add(b);
                        }
                    }
                }
                gc.backward(y.sum());
            }
            double[] g = x.getGradient().toType(DataType.FLOAT64, false).toDoubleArray();
            keep.clear();
            return g;
        }
    }
}
