package lab.steering.service.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelFolder;
import lab.steering.model.WeightStorage;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model memory estimate against what a load really holds (the tensors' own sizes, and the JVM's direct memory,
 * where DJL keeps CPU tensors made from Java buffers), and the default budget's rule.
 */
class ModelMemoryTest {

    @TempDir
    static Path tmp;

    static long directUsed() {
        for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            if (b.getName().equals("direct")) {
                return b.getMemoryUsed();
            }
        }
        throw new IllegalStateException("no direct buffer pool");
    }

    static long settledDirectUsed() throws InterruptedException {
        long last = -1;
        for (int i = 0; i < 20; i++) { // freed buffers of garbage objects: let the collector and cleaner run
            System.gc();
            Thread.sleep(50);
            long now = directUsed();
            if (now == last) {
                return now;
            }
            last = now;
        }
        return last;
    }

    @Test
    void theWeightsOfALoadedModelAreWhatTheEstimateCountsAndLiveInDirectMemory() throws Exception {
        // bfloat16 on disk, float32 in memory: the estimate counts the dtype the weights are held in
        Path folder = TinyCheckpoint.llama().hidden(128).layers(3).heads(4).kvHeads(2).intermediate(256).vocab(2048)
                .tied(false).dtype("BF16").seed(3).writeTo(tmp.resolve("m"));
        long estimate = ModelMemory.weightBytes(ModelFolder.scan(folder), WeightStorage.FLOAT32, DataType.FLOAT32);
        long before = settledDirectUsed();
        try (LanguageModel model = LanguageModel.load(folder, Device.cpu())) {
            long held = settledDirectUsed() - before;
            long tensors = 0;
            long largest = 0;
            for (NDArray a : model.transformer().weights().all()) {
                long bytes = a.getShape().size() * a.getDataType().getNumOfBytes();
                tensors += bytes;
                largest = Math.max(largest, bytes);
            }
            assertEquals(tensors, estimate, "the tensors' own sizes");
            assertEquals(estimate, model.weightBytes());
            // measured: the weights are the direct memory the load keeps (tolerance: the tokenizer's and DJL's
            // own small buffers)
            assertTrue(Math.abs(held - estimate) < 0.05 * estimate + (256 << 10),
                    "direct memory held " + held + " vs weights " + estimate);
            // the margin covers the load's staging copy of its largest tensor (file -> buffer -> DJL's buffer)
            assertTrue(ModelMemory.need(estimate) - estimate >= largest, "margin vs largest tensor " + largest);

            // a float64 copy for exact Jacobians counts once it exists
            model.transformer(DataType.FLOAT64);
            assertEquals(estimate * 3, model.weightBytes());
        }
    }

    @Test
    void generationsOwnCopyCountsWhenItsDtypeDiffers() throws Exception {
        Path folder = TinyCheckpoint.llama().seed(4).writeTo(tmp.resolve("g"));
        ModelFolder f = ModelFolder.scan(folder);
        long params = f.config().parameterCount();
        assertEquals(params * 4, ModelMemory.weightBytes(f, WeightStorage.FLOAT32, DataType.FLOAT32));
        assertEquals(params * 6, ModelMemory.weightBytes(f, WeightStorage.FLOAT32, DataType.BFLOAT16));
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu(), DataType.FLOAT32, DataType.FLOAT64)) {
            assertEquals(params * 12, m.weightBytes()); // the float32 weights and generation's float64 copy
        }
    }

    @Test
    void theDefaultBudgetIsTheSmallerOfHalfTheMemoryAndThreeQuartersOfDirectMemory() {
        long g = 1L << 30;
        ModelMemory.Budget b = ModelMemory.defaultBudget(32 * g, 8 * g, null);
        assertEquals(6 * g, b.bytes());
        assertTrue(b.source().contains("direct memory"), b.source());
        b = ModelMemory.defaultBudget(8 * g, 32 * g, null);
        assertEquals(4 * g, b.bytes());
        assertTrue(b.source().contains("physical memory"), b.source());
        b = ModelMemory.defaultBudget(8 * g, 32 * g, 80 * g); // a GPU: 80 % of its memory
        assertEquals(64 * g, b.bytes());
    }
}
