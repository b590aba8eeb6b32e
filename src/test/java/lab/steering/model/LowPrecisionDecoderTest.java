package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import lab.steering.SharedModels;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.SteeringOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Generation in a lower precision than the weights, as on a GPU with LAB_GPU_DTYPE (bf16 there; float16 here,
 * because the CPU build of PyTorch runs float16 but DJL's bfloat16 crashes on the CPU): the decoder is a converted
 * copy, Jacobians and operators still start from the float32 weights, and the float32 injector steers the float16
 * residual stream. Reference: the same model in float32 (logits within float16's rounding, same greedy start).
 */
class LowPrecisionDecoderTest {

    static LanguageModel f32;
    static LanguageModel f16;

    @BeforeAll
    static void load() {
        f32 = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
        f16 = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu(), DataType.FLOAT32,
                DataType.FLOAT16);
    }

    @AfterAll
    static void close() {
        if (f32 != null) {
            f32.close();
        }
        if (f16 != null) {
            f16.close();
        }
    }

    @Test
    void decoderIsAConvertedCopyAndAnalysisKeepsFloat32() {
        assertEquals(DataType.FLOAT16, f16.generationDataType());
        assertEquals(DataType.FLOAT16, f16.decoder().weights().embed().getDataType());
        assertEquals(DataType.FLOAT32, f16.dataType());
        assertSame(f16.transformer(DataType.FLOAT16), f16.decoder()); // converted once, then reused
        assertSame(f32.transformer(), f32.decoder());                 // same dtype: no copy
    }

    @Test
    void float16LogitsFollowFloat32() {
        long[] ids = f32.tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved");
        double[][] want = Generator.allLogits(f32, ids, Hooks.NONE);
        try (NDManager m = f16.manager().newSubManager()) {
            float[] got = Generator.lastLogits(f16.decoder(), m, ids, null, Hooks.NONE);
            double[] w = want[ids.length - 1];
            double maxDiff = 0;
            double maxAbs = 0;
            for (int i = 0; i < got.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(got[i] - w[i]));
                maxAbs = Math.max(maxAbs, Math.abs(w[i]));
            }
            System.out.printf("float16 decoder: max |logit diff| %.3g of max |logit| %.3g%n", maxDiff, maxAbs);
            assertTrue(maxDiff <= 2e-2 * maxAbs, "max diff " + maxDiff + " vs max |logit| " + maxAbs);
        }
    }

    @Test
    void float32InjectorSteersTheFloat16Stream() {
        long[] concept = f32.tokenizer().encode("The dog barked at the cat in the garden");
        long[] prompt = f32.tokenizer().encode("Once upon a time");
        SteeringOperator op = OperatorBuilder.full(f16, concept, 3, f16.dataType(), r -> { });
        GenerationParams greedy = GenerationParams.greedy(8);
        SteeredRun.Result lo = SteeredRun.run(f16, prompt, greedy, m -> new Injector(op, 1.0, m, DataType.FLOAT32),
                concept, 0);
        SteeredRun.Result hi = SteeredRun.run(f32, prompt, greedy, m -> new Injector(op, 1.0, m, DataType.FLOAT32),
                concept, 0);
        SteeredRun.Result zero = SteeredRun.run(f16, prompt, greedy, m -> new Injector(op, 0, m, DataType.FLOAT32),
                concept, 0);
        var plain = Generator.generate(f16, prompt, greedy, Hooks.NONE);
        assertEquals(plain.tokens().stream().map(t -> t.id()).toList(),
                zero.generation().tokens().stream().map(t -> t.id()).toList(), "strength 0 = unsteered (float16)");
        assertEquals(hi.steps().get(0).id(), lo.steps().get(0).id(), "first steered token");
        assertEquals(hi.steps().get(0).addedNorm(), lo.steps().get(0).addedNorm(),
                1e-2 * hi.steps().get(0).addedNorm(), "injected norm");
        assertTrue(hi.steps().get(0).kl() > 0 && lo.steps().get(0).kl() > 0, "steering changes the distribution");
    }
}
