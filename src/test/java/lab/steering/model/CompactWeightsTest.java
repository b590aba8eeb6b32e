package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import java.nio.file.Path;
import java.util.List;
import lab.steering.generate.GeneratedToken;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.jacobian.JacobianEngine;
import lab.steering.jacobian.LowRank;
import lab.steering.jacobian.Target;
import lab.steering.service.models.ModelMemory;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.SteeringOperator;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Compact weights ({@link WeightStorage#COMPACT}) against the same checkpoint widened to float32 at load: the matrices
 * stay in the stored bfloat16 or float16, and since widening them is exact, every number is bit-identical (compared
 * with tolerance 0): logits, greedy generation with the KV cache, a batched decoding step, detached Jacobians in
 * float32 and float64, the matrix-free top-k and a steered run. The weights take about half the memory.
 */
class CompactWeightsTest {

    static final long[] PROMPT = {1, 17, 4, 99, 23, 8, 61, 5};

    @TempDir
    Path tmp;

    static TinyCheckpoint llama(String dtype) {
        return TinyCheckpoint.llama().hidden(64).layers(3).heads(4).kvHeads(2).intermediate(128).vocab(300)
                .tied(false).dtype(dtype).seed(5);
    }

    static LanguageModel load(Path folder, WeightStorage storage) {
        return LanguageModel.load(folder, Device.cpu(), DataType.FLOAT32, DataType.FLOAT32, storage);
    }

    @ParameterizedTest
    @ValueSource(strings = {"BF16", "F16"})
    void compactKeepsTheStoredDtypeAndComputesTheSameNumbers(String dtype) throws Exception {
        Path folder = llama(dtype).writeTo(tmp.resolve(dtype));
        try (LanguageModel compact = load(folder, WeightStorage.COMPACT);
             LanguageModel wide = load(folder, WeightStorage.FLOAT32)) {
            DataType kept = dtype.equals("BF16") ? DataType.UINT8 : DataType.FLOAT16; // bfloat16: its bytes
            Weights w = compact.transformer().weights();
            Weights.Layer l0 = w.layers().get(0);
            for (NDArray a : new NDArray[] {w.embed(), w.lmHead(), l0.wq(), l0.wk(), l0.wv(), l0.wo(), l0.gate(),
                l0.up(), l0.down()}) {
                assertEquals(kept, a.getDataType(), a.getName());
            }
            assertEquals(DataType.FLOAT32, l0.attnNorm().weight().getDataType());
            assertEquals(DataType.FLOAT32, compact.dataType());
            assertTrue(wide.transformer().weights().all().stream()
                    .allMatch(a -> a.getDataType() == DataType.FLOAT32));

            assertArrayEquals(Generator.allLogits(wide, PROMPT, Hooks.NONE),
                    Generator.allLogits(compact, PROMPT, Hooks.NONE), "logits");
            GenerationParams greedy = GenerationParams.greedy(12);
            assertEquals(tokens(Generator.generate(wide, PROMPT, greedy, Hooks.NONE).tokens()),
                    tokens(Generator.generate(compact, PROMPT, greedy, Hooks.NONE).tokens()), "greedy generation");
            assertArrayEquals(batchedStep(wide), batchedStep(compact), "batched decoding step");

            Target mid = new Target(2, Target.Mode.CUMULATIVE, Target.Component.LAYER);
            for (DataType jd : new DataType[] {DataType.FLOAT32, DataType.FLOAT64}) {
                for (Target t : new Target[] {Target.output(3), mid}) {
                    assertArrayEquals(JacobianEngine.full(wide, PROMPT, jd, t, 1 << 20, r -> { }).jacobian(),
                            JacobianEngine.full(compact, PROMPT, jd, t, 1 << 20, r -> { }).jacobian(),
                            "detached Jacobian, " + jd + ", " + t);
                }
            }
            LowRank.Settings topK = LowRank.Settings.of(4).withCompletion(false);
            LowRank.Result a = LowRank.topK(wide, PROMPT, DataType.FLOAT32, Target.output(3), topK);
            LowRank.Result b = LowRank.topK(compact, PROMPT, DataType.FLOAT32, Target.output(3), topK);
            assertArrayEquals(a.combined().singularValues(), b.combined().singularValues(), "matrix-free top-4");
            assertArrayEquals(a.reconstruction(), b.reconstruction(), "matrix-free reconstruction");

            assertEquals(steered(wide), steered(compact), "steered run");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "gemma3_text", "olmo2", "phi3", "gpt2"})
    void everyFamilyLoadsCompactWithTheSameNumbers(String family) throws Exception {
        TinyCheckpoint t = TinyCheckpoint.family(family).hidden(32).layers(2).heads(4).kvHeads(family.equals("gpt2")
                ? 4 : 2).headDim(8).intermediate(64).vocab(96).dtype("BF16").seed(9);
        Path folder = t.writeTo(tmp.resolve(family));
        try (LanguageModel compact = load(folder, WeightStorage.COMPACT);
             LanguageModel wide = load(folder, WeightStorage.FLOAT32)) {
            assertEquals(DataType.UINT8, compact.transformer().weights().layers().get(1).wo().getDataType());
            long[] ids = {3, 50, 7, 11, 2};
            assertArrayEquals(Generator.allLogits(wide, ids, Hooks.NONE),
                    Generator.allLogits(compact, ids, Hooks.NONE), family + " logits");
            Target out = Target.output(2);
            assertArrayEquals(JacobianEngine.full(wide, ids, DataType.FLOAT64, out, 1 << 20, r -> { }).jacobian(),
                    JacobianEngine.full(compact, ids, DataType.FLOAT64, out, 1 << 20, r -> { }).jacobian(),
                    family + " float64 Jacobian");
        }
    }

    /** lm_head in blocks of rows gives the whole product's logits, bit for bit. */
    @Test
    void lmHeadInBlocksOfRowsIsTheWholeProduct() throws Exception {
        Path folder = llama("BF16").vocab(2500).writeTo(tmp.resolve("blocks"));
        try (LanguageModel compact = load(folder, WeightStorage.COMPACT);
             LanguageModel wide = load(folder, WeightStorage.FLOAT32);
             NDManager m = wide.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray hidden = m.randomNormal(new Shape(3, 64));
            float[] whole = Linear.linear(hidden, wide.transformer().weights().lmHead()).singletonOrThrow()
                    .toFloatArray();
            Weights w = compact.transformer().weights();
            for (long block : new long[] {64 * 4 * 1024, 64 * 4 * 3000}) { // rows 1024, 1024, 452; 2048, 452
                assertArrayEquals(whole, w.byRows(w.lmHead(), m, block,
                        head -> Linear.linear(hidden, head).singletonOrThrow()).toFloatArray(), "block " + block);
            }
        }
    }

    @Test
    void compactWeightsTakeAboutHalfTheMemoryAndTheEstimateFollows() throws Exception {
        Path folder = llama("BF16").writeTo(tmp.resolve("memory"));
        ModelFolder scanned = ModelFolder.scan(folder);
        long estimate = ModelMemory.weightBytes(scanned, WeightStorage.COMPACT, DataType.FLOAT32);
        long float32 = ModelMemory.weightBytes(scanned, WeightStorage.FLOAT32, DataType.FLOAT32);
        try (LanguageModel compact = load(folder, WeightStorage.COMPACT);
             LanguageModel wide = load(folder, WeightStorage.FLOAT32)) {
            long held = compact.weightBytes();
            assertEquals(float32, wide.weightBytes());
            assertTrue(held < 0.51 * wide.weightBytes(), held + " vs " + wide.weightBytes());
            assertTrue(Math.abs(estimate - held) < 0.01 * held, "estimate " + estimate + " vs held " + held);
            // float64 analysis shares the compact matrices: its copy holds the float32 arrays (norms) in float64
            long small = held - compact.transformer().weights().compactBytes();
            compact.transformer(DataType.FLOAT64);
            assertEquals(held + 2 * small, compact.weightBytes(), "with the float64 twin");
            assertNotEquals(compact.transformer(), compact.transformer(DataType.FLOAT64));
        }
    }

    static List<Long> tokens(List<GeneratedToken> ts) {
        return ts.stream().map(GeneratedToken::id).toList();
    }

    /** Logits of one batched step of two rows at different positions (prompts of 8 and 5 tokens). */
    static float[] batchedStep(LanguageModel model) {
        Transformer tf = model.transformer();
        ModelConfig c = tf.config();
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope();
             RowCache rows = new RowCache(m, c, 2, 16, tf.dataType())) {
            scope.suppressNotUsedWarning();
            for (int r = 0; r < 2; r++) {
                long[] ids = java.util.Arrays.copyOf(PROMPT, 8 - 3 * r);
                try (KvCache one = new KvCache(m, c, 1, 16, tf.dataType())) {
                    tf.forward(m.create(ids, new Shape(1, ids.length)), one, Hooks.NONE);
                    rows.load(r, one);
                }
            }
            NDArray h = tf.forwardRows(m.create(new long[] {7, 9}, new Shape(2, 1)), rows, Hooks.NONE);
            return tf.logits(h).toFloatArray();
        }
    }

    /** A steered greedy run's token ids, log-probabilities and KL divergences. */
    static List<List<Double>> steered(LanguageModel model) {
        SteeringOperator op = OperatorBuilder.full(model, PROMPT, 2, DataType.FLOAT32, r -> { });
        SteeredRun.Result r = SteeredRun.run(model, new long[] {1, 40, 41}, GenerationParams.greedy(6),
                m -> new Injector(op, 2.0, m, DataType.FLOAT32), PROMPT, 0);
        return r.steps().stream().map(s -> List.of((double) s.id(), s.logprob(), s.kl())).toList();
    }
}
