package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.jacobian.JacobianEngine;
import lab.steering.jacobian.Target;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Decoding steps run on {@link Threads#decode()} threads, everything heavier on the engine's, per Java thread. */
class ThreadsTest {

    @TempDir
    static Path tmp;

    @Test
    void decodingStepsUseTheDecodeCountAndJacobiansTheEngineCountOnTheSameThread() throws Exception {
        Path folder = TinyCheckpoint.llama().hidden(16).layers(2).heads(2).kvHeads(1).intermediate(24).vocab(32)
                .seed(3).writeTo(tmp.resolve("tiny"));
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (LanguageModel model = LanguageModel.load(folder, Device.cpu())) {
            long[] prompt = {1, 5, 9, 2, 7, 3};
            int[] seen = pool.submit(() -> {
                int[] s = new int[3];
                try (var m = model.manager().newSubManager();
                     KvCache cache = new KvCache(m, model.config(), 1, 16, model.dataType())) {
                    Generator.lastLogits(model.transformer(), m, prompt, cache, Hooks.NONE);
                    s[0] = JniUtils.getNumThreads();
                    Generator.lastLogits(model.transformer(), m, new long[] {4}, cache, Hooks.NONE);
                    s[1] = JniUtils.getNumThreads();
                }
                JacobianEngine.full(model, prompt, DataType.FLOAT32, Target.output(2), 1L << 20, r -> { });
                s[2] = JniUtils.getNumThreads();
                return s;
            }).get();
            assertEquals(Threads.engine(), seen[0], "a prompt of 6 tokens");
            assertEquals(Threads.decode(), seen[1], "a one-token step");
            assertEquals(Threads.engine(), seen[2], "a Jacobian after decoding on the same thread");
        } finally {
            pool.shutdownNow();
        }
    }
}
