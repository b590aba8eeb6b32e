package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import lab.steering.SharedModels;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class KvCacheTest {

    static LanguageModel model;

    @BeforeAll
    static void load() {
        model = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    /**
     * Feeding tokens one at a time (and in uneven chunks) through the cache gives the logits of re-encoding the
     * whole text. Tolerance 1e-4 absolute on logits of magnitude ~10: float32 sums in another order.
     */
    @Test
    void incrementalDecodingMatchesReencoding() {
        long[] ids = model.tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved");
        double[][] full = Generator.allLogits(model, ids, Hooks.NONE);
        Transformer tf = model.transformer();
        try (NDManager m = model.manager().newSubManager();
             KvCache cache = new KvCache(m, tf.config(), 1, 4, DataType.FLOAT32)) { // small: forces growth
            int[] chunks = {3, 1, 5, 1, 1};
            int pos = 0;
            int c = 0;
            while (pos < ids.length) {
                int n = Math.min(chunks[c++ % chunks.length], ids.length - pos);
                long[] part = java.util.Arrays.copyOfRange(ids, pos, pos + n);
                float[] got = Generator.lastLogits(tf, m, part, cache, Hooks.NONE);
                pos += n;
                double[] want = full[pos - 1];
                double maxDiff = 0;
                for (int i = 0; i < got.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
                }
                assertEquals(0, maxDiff, 1e-4, "logits at position " + (pos - 1));
            }
            assertEquals(ids.length, cache.length());
        }
    }

    @Test
    void greedyWithCacheEqualsGreedyWithoutCache() {
        long[] ids = model.tokenizer().encode("Once upon a time");
        var params = lab.steering.generate.GenerationParams.greedy(40);
        var cached = Generator.generate(model, ids, params, Hooks.NONE, true, true, t -> { });
        var full = Generator.generate(model, ids, params, Hooks.NONE, false, true, t -> { });
        assertArrayEquals(full.tokens().stream().mapToLong(t -> t.id()).toArray(),
                cached.tokens().stream().mapToLong(t -> t.id()).toArray());
        System.out.println(cached.completion());
    }
}
