package lab.steering.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {

    /** A tiny model: d 32, 2 layers, 4 heads / 2 kv heads, vocab 16, context 16. */
    static final TrainingConfig TINY = TrainingConfig.DEFAULTS.with(Map.ofEntries(
            Map.entry("vocab-size", "16"), Map.entry("hidden", "32"), Map.entry("layers", "2"),
            Map.entry("heads", "4"), Map.entry("kv-heads", "2"), Map.entry("intermediate", "64"),
            Map.entry("context", "16"), Map.entry("batch", "4"), Map.entry("steps", "100"),
            Map.entry("warmup", "10"), Map.entry("peak-lr", "1e-2"), Map.entry("eval-every", "50"),
            Map.entry("eval-windows", "4"), Map.entry("seed", "1")));

    @BeforeAll
    static void engine() {
        Trainer.setUpEngine(2);
    }

    /** A short sequence repeated: the windows are its rotations, which a 2-layer model learns in 100 steps. */
    static TokenData.Tokens repeated() {
        int[] pattern = {0, 5, 3, 9, 3, 12, 7, 2, 14, 6, 11, 4, 8, 1, 15, 10, 13, 2, 9, 5};
        int[] train = new int[pattern.length * 40];
        for (int i = 0; i < train.length; i++) {
            train[i] = pattern[i % pattern.length];
        }
        int[] valid = java.util.Arrays.copyOf(train, 60);
        return new TokenData.Tokens(train, valid, 0, 1, 16);
    }

    @Test
    void tinyModelOverfitsARepeatedSequence(@TempDir Path run) throws Exception {
        Trainer.Result r = new Trainer(TINY, repeated(), run, Trainer.Options.quiet()).run();
        assertTrue(r.finished());
        assertEquals(100, r.step());
        double start = Math.log(16); // 2.77: uniform over the vocabulary
        assertTrue(r.lastTrainLoss() < 0.25 * start, "train loss " + r.lastTrainLoss() + " after 100 steps");
        assertTrue(r.lastValLoss() < 0.25 * start, "validation loss " + r.lastValLoss());
        assertTrue(Files.isRegularFile(run.resolve("final.json")));
        assertTrue(Checkpoint.exists(run));
    }

    /** Stopping after 3 steps and resuming from the checkpoint ends bit-identical to an uninterrupted run. */
    @Test
    void resumeIsBitIdentical(@TempDir Path straight, @TempDir Path interrupted) throws Exception {
        TrainingConfig cfg = TINY.with(Map.of("steps", "6", "warmup", "2", "eval-every", "100"));
        TokenData.Tokens data = repeated();
        Trainer.Result a = new Trainer(cfg, data, straight, Trainer.Options.quiet()).run();

        Trainer.Options stopAt3 = new Trainer.Options(1_000_000, 0, 0, 3, false, Trainer.Options.quiet().log());
        Trainer.Result first = new Trainer(cfg, data, interrupted, stopAt3).run();
        assertFalse(first.finished());
        assertEquals(3, first.step());
        assertEquals(3, Checkpoint.load(interrupted).state().get("step").asInt());
        Trainer.Result b = new Trainer(cfg, data, interrupted, Trainer.Options.quiet()).run();
        assertTrue(b.finished());

        assertEquals(a.lastTrainLoss(), b.lastTrainLoss(), 0.0, "loss of the last step");
        Checkpoint.Loaded ca = Checkpoint.load(straight);
        Checkpoint.Loaded cb = Checkpoint.load(interrupted);
        assertEquals(ca.params().keySet(), cb.params().keySet());
        for (String name : ca.params().keySet()) {
            assertArrayEquals(ca.params().get(name), cb.params().get(name), 0f, name);
            assertArrayEquals(ca.first().get(name), cb.first().get(name), 0f, "m " + name);
            assertArrayEquals(ca.second().get(name), cb.second().get(name), 0f, "v " + name);
        }
        assertEquals(6, cb.state().get("adamSteps").asInt());
    }

    @Test
    void scheduleWarmsUpThenDecaysToTenPercent() {
        TrainingConfig c = TrainingConfig.DEFAULTS.with(Map.of("steps", "1000", "warmup", "100", "peak-lr", "1e-3"));
        assertEquals(1e-5, c.learningRate(0), 1e-12);
        assertEquals(1e-3, c.learningRate(99), 1e-12);
        assertEquals(1e-3, c.learningRate(100), 1e-12);
        assertEquals(0.55e-3, c.learningRate(550), 1e-9); // half way through the decay
        assertEquals(1e-4, c.learningRate(1000), 1e-12);
    }

    @Test
    void windowsArePureFunctionsOfSeedAndStep() {
        int[] tokens = new int[1000];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = i;
        }
        long[] a = new long[3 * 9];
        long[] b = new long[3 * 9];
        TokenData.sampleWindows(tokens, 8, 42, 17, 0, 3, a);
        TokenData.sampleWindows(tokens, 8, 42, 17, 0, 3, b);
        assertArrayEquals(a, b);
        for (int r = 0; r < 3; r++) {
            for (int j = 1; j < 9; j++) {
                assertEquals(a[r * 9] + j, a[r * 9 + j]); // consecutive ids
            }
        }
        TokenData.sampleWindows(tokens, 8, 42, 18, 0, 3, b);
        assertFalse(java.util.Arrays.equals(a, b));
    }

    @Test
    void zeroClearsNanAndInfinityInPlace() {
        try (ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager(ai.djl.Device.cpu())) {
            ai.djl.ndarray.NDArray g = m.create(new float[] {Float.NaN, Float.POSITIVE_INFINITY, -2f, 3f});
            Trainer.zero(java.util.List.of(g));
            assertArrayEquals(new float[] {0f, 0f, 0f, 0f}, g.toFloatArray(), 0f);
        }
    }

    /** zero() reaches the gradient PyTorch accumulates into: a second backward after it gives 1, not 2. */
    @Test
    void zeroResetsTheAccumulatedGradient() {
        try (ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager(ai.djl.Device.cpu())) {
            ai.djl.ndarray.NDArray p = m.create(new float[] {1f, 2f});
            p.setRequiresGradient(true);
            for (int i = 0; i < 2; i++) {
                try (ai.djl.training.GradientCollector gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                    gc.backward(p.sum());
                }
                ai.djl.ndarray.NDArray g = p.getGradient();
                assertArrayEquals(new float[] {1f, 1f}, g.toFloatArray(), 0f, "backward " + i);
                Trainer.zero(java.util.List.of(g));
                g.close();
            }
        }
    }
}
