package lab.steering.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import lab.steering.SharedModels;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** 1,000 generate calls in a row free every NDArray they make: no arrays left behind, no native growth. */
@Tag("slow")
class GenerationMemoryTest {

    static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        throw new IllegalStateException("no VmRSS");
    }

    @Test
    void thousandGenerateCallsLeaveNoNativeGrowth() throws IOException {
        try (LanguageModel model = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu())) {
            long[] prompt = model.tokenizer().encode("Once upon a time");
            int arraysAtStart = model.manager().getManagedArrays().size();
            GenerationParams params = new GenerationParams(4, 0.8, 20, 0.95, 1);
            long rssAfterWarmup = 0;
            for (int i = 0; i < 1000; i++) {
                Generator.generate(model, prompt, params, Hooks.NONE);
                if (i == 99) {
                    System.gc();
                    rssAfterWarmup = rssKb();
                }
            }
            System.gc();
            long rssEnd = rssKb();
            long growthKb = rssEnd - rssAfterWarmup;
            System.out.printf("RSS after 100 calls %d kB, after 1000 calls %d kB, growth %d kB%n",
                    rssAfterWarmup, rssEnd, growthKb);
            assertEquals(arraysAtStart, model.manager().getManagedArrays().size(),
                    "arrays still attached to the model's manager after 1000 calls");
            // 900 calls x ~100 arrays each would leak tens of MB if arrays were kept; allow allocator noise.
            assertTrue(growthKb < 16 * 1024, "native memory grew by " + growthKb + " kB over 900 calls");
        }
    }
}
