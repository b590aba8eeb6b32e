package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import lab.steering.SharedModels;
import lab.steering.generate.BatchDecoder;
import lab.steering.generate.DecodeDriver;
import lab.steering.generate.GeneratedToken;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Batched decoding against the unbatched reference ({@link DecodeDriver#alone}, each row with its own cache and
 * forward): for mixed batches (prompts of different lengths, no steering, dense and low-rank operators at different
 * layers and strengths, a vector, greedy and sampled, rows joining mid-way and leaving early) every decoding's token
 * ids are identical and its log-probabilities, steered and unsteered, within 1e-4.
 */
class BatchDecoderTest {

    static LanguageModel model;
    static SteeringOperator dense3;
    static SteeringOperator dense4;
    static SteeringOperator lowRank;
    static SteeringVector vector;
    static long[] concept;

    static final String[] PROMPTS = {
        "Once upon a time",
        "Lily and her mom went to the park. They saw a big dog and",
        "One day, a little boy named Tim",
        "The sun was hot. The cat",
        "She had a red ball. She liked to play with it every day, and she",
    };

    @BeforeAll
    static void build() {
        model = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
        concept = model.tokenizer().encode("The dog barked at the cat in the garden");
        dense3 = OperatorBuilder.full(model, concept, 3, DataType.FLOAT32, r -> { });
        dense4 = OperatorBuilder.atLayer(model, dense3, 4);
        lowRank = OperatorBuilder.lowRank(dense3, 8, 0);
        vector = SteeringVector.build(model, concept, new long[0], 3);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    /** A decoding's recipe, so that the same one can be made twice (batched and alone). */
    record Spec(String prompt, GenerationParams params, Function<NDManager, Steerer> steering) {
        SteeredRun.Decoding make(java.util.function.Consumer<SteeredRun.Step> onStep) {
            return new SteeredRun.Decoding(model, model.tokenizer().encode(prompt), params, steering, concept, 3,
                    onStep);
        }

        Spec withLonger() {
            return new Spec(prompt, params.withMaxNewTokens(200), steering);
        }
    }

    static List<Spec> mixed() {
        GenerationParams greedy = GenerationParams.greedy(24);
        GenerationParams sampled = new GenerationParams(30, 1.0, 40, 0.95, 7);
        GenerationParams shortOne = GenerationParams.greedy(5);
        GenerationParams controlled = new GenerationParams(24, 0, 0, 1, 0, 1.3, 3);
        List<Spec> out = new ArrayList<>();
        out.add(new Spec(PROMPTS[0], greedy, null));
        out.add(new Spec(PROMPTS[1], greedy, m -> new Injector(dense3, 1.0, m, DataType.FLOAT32)));
        out.add(new Spec(PROMPTS[2], sampled, m -> new Injector(dense4, 2.0, m, DataType.FLOAT32)));
        out.add(new Spec(PROMPTS[3], shortOne, null));
        out.add(new Spec(PROMPTS[4], greedy, m -> new Injector(lowRank, 0.5, m, DataType.FLOAT32)));
        out.add(new Spec(PROMPTS[0], controlled, m -> new VectorInjector(vector, 1.5, m, DataType.FLOAT32)));
        out.add(new Spec(PROMPTS[2], sampled, null));
        out.add(new Spec(PROMPTS[1], greedy, m -> new Injector(dense3, 0, m, DataType.FLOAT32)));
        return out;
    }

    static SteeredRun.Result alone(Spec s) {
        SteeredRun.Decoding d = s.make(null);
        DecodeDriver.alone(model, d);
        return d.result();
    }

    static void assertSame(SteeredRun.Result want, SteeredRun.Result got, String what) {
        long[] w = want.generation().tokens().stream().mapToLong(GeneratedToken::id).toArray();
        long[] g = got.generation().tokens().stream().mapToLong(GeneratedToken::id).toArray();
        assertArrayEquals(w, g, what + ": token ids");
        assertEquals(want.generation().finishReason(), got.generation().finishReason(), what);
        for (int i = 0; i < w.length; i++) {
            SteeredRun.Step a = want.steps().get(i);
            SteeredRun.Step b = got.steps().get(i);
            assertEquals(a.logprob(), b.logprob(), 1e-4, what + ": logprob at " + i);
            assertEquals(a.unsteeredLogprob(), b.unsteeredLogprob(), 1e-4, what + ": unsteered logprob at " + i);
            assertEquals(a.kl(), b.kl(), 1e-4, what + ": KL at " + i);
            assertEquals(a.addedNorm(), b.addedNorm(), 1e-3 * Math.max(1, a.addedNorm()), what + ": norm at " + i);
        }
    }

    @Test
    void aMixedBatchGivesEachDecodingItsUnbatchedTokens() throws Exception {
        List<Spec> specs = mixed();
        List<SteeredRun.Result> want = specs.stream().map(BatchDecoderTest::alone).toList();
        try (BatchDecoder b = new BatchDecoder(model, 16, 16)) {
            List<SteeredRun.Decoding> ds = specs.stream().map(s -> s.make(null)).toList();
            b.submit(ds.toArray(SteeredRun.Decoding[]::new)).get(120, TimeUnit.SECONDS);
            for (int i = 0; i < specs.size(); i++) {
                assertSame(want.get(i), ds.get(i).result(), "decoding " + i);
            }
            BatchDecoder.Stats st = b.stats();
            assertTrue(st.maxRowsSeen() >= 10, "rows decoded together: " + st.maxRowsSeen());
        }
    }

    /**
     * Decodings joining while others are half-way (a second submission made from the first one's fourth token), with
     * fewer places than rows (some wait for others to leave): still each one's own tokens.
     */
    @Test
    void decodingsJoiningMidWayAndWaitingForPlacesGetTheirOwnTokens() throws Exception {
        List<Spec> specs = mixed();
        List<SteeredRun.Result> want = specs.stream().map(BatchDecoderTest::alone).toList();
        try (BatchDecoder b = new BatchDecoder(model, 5, 64)) {
            List<SteeredRun.Decoding> late = specs.subList(2, specs.size()).stream().map(s -> s.make(null)).toList();
            CompletableFuture<CompletableFuture<Void>> second = new CompletableFuture<>();
            SteeredRun.Decoding first = specs.get(0).make(st -> {
                if (st.index() == 3) {
                    second.complete(b.submit(late.toArray(SteeredRun.Decoding[]::new)));
                }
            });
            SteeredRun.Decoding other = specs.get(1).make(null);
            b.submit(first, other).get(120, TimeUnit.SECONDS);
            second.get(10, TimeUnit.SECONDS).get(120, TimeUnit.SECONDS);
            assertSame(want.get(0), first.result(), "first");
            assertSame(want.get(1), other.result(), "second");
            for (int i = 0; i < late.size(); i++) {
                assertSame(want.get(i + 2), late.get(i).result(), "late " + i);
            }
            assertTrue(b.stats().maxRowsSeen() <= 5);
        }
    }

    /** A cancelled decoding leaves at the next step, its future fails, and the rows beside it are unharmed. */
    @Test
    void aCancelledDecodingLeavesWithoutHarmingTheOthers() throws Exception {
        List<Spec> specs = mixed();
        SteeredRun.Result want = alone(specs.get(1));
        try (BatchDecoder b = new BatchDecoder(model, 8, 8)) {
            CountDownLatch started = new CountDownLatch(1);
            SteeredRun.Decoding[] victim = new SteeredRun.Decoding[1];
            victim[0] = specs.get(0).withLonger().make(st -> {
                if (st.index() == 2) {
                    victim[0].cancel();
                    started.countDown();
                }
            });
            SteeredRun.Decoding keep = specs.get(1).make(null);
            CompletableFuture<Void> gone = b.submit(victim[0]);
            CompletableFuture<Void> kept = b.submit(keep);
            assertThrows(CancellationException.class, () -> gone.get(60, TimeUnit.SECONDS));
            kept.get(60, TimeUnit.SECONDS);
            assertSame(want, keep.result(), "kept");
            assertTrue(started.await(1, TimeUnit.SECONDS));
            assertEquals(0, b.load()[0]);
        }
    }

    /** Beyond the bound on waiting rows a submission is refused at once, with a retry estimate. */
    @Test
    void submissionsBeyondTheWaitingBoundAreRefused() throws Exception {
        try (BatchDecoder b = new BatchDecoder(model, 2, 2)) {
            Spec slow = new Spec(PROMPTS[0], GenerationParams.greedy(200), null);
            List<SteeredRun.Decoding> made = new ArrayList<>();
            BatchDecoder.Full full = null;
            List<CompletableFuture<Void>> fs = new ArrayList<>();
            for (int i = 0; i < 10 && full == null; i++) {
                SteeredRun.Decoding d = slow.make(null);
                try {
                    fs.add(b.submit(d));
                    made.add(d);
                } catch (BatchDecoder.Full f) {
                    full = f;
                }
            }
            assertTrue(full != null, "some submission is refused");
            assertTrue(full.retryAfterSeconds() >= 1);
            assertTrue(full.getMessage().contains("LAB_BATCH_MAX_ROWS"), full.getMessage());
            made.forEach(SteeredRun.Decoding::cancel);
            for (CompletableFuture<Void> f : fs) {
                assertThrows(CancellationException.class, () -> f.get(60, TimeUnit.SECONDS));
            }
        }
    }
}
