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
            // RSS after 100 warm-up calls, then after every further 300: a leak grows it in every interval, while
            // one-off growth (the Java heap committing and touching more pages, allocator arenas) shows in one.
            long[] rss = new long[4];
            for (int i = 0; i < 1000; i++) {
                Generator.generate(model, prompt, params, Hooks.NONE);
                if (i == 99 || i == 399 || i == 699 || i == 999) {
                    System.gc();
                    rss[(i - 99) / 300] = rssKb();
                }
            }
            long minGrowthKb = Long.MAX_VALUE;
            for (int k = 1; k < rss.length; k++) {
                minGrowthKb = Math.min(minGrowthKb, rss[k] - rss[k - 1]);
            }
            System.out.printf("RSS after 100, 400, 700, 1000 calls: %d, %d, %d, %d kB%n", rss[0], rss[1], rss[2], rss[3]);
            assertEquals(arraysAtStart, model.manager().getManagedArrays().size(),
                    "arrays still attached to the model's manager after 1000 calls");
            // Keeping a call's arrays (its KV cache alone is 0.6 MB) would add hundreds of MB per 300 calls.
            assertTrue(minGrowthKb < 4 * 1024, "native memory grew by at least " + minGrowthKb
                    + " kB in every interval of 300 calls (RSS " + java.util.Arrays.toString(rss) + " kB)");
        }
    }
}
