package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import java.util.ArrayList;
import java.util.List;
import lab.steering.SharedModels;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;
import lab.steering.model.LanguageModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The side-by-side run: same tokens as Generator, diagnostics that add up, low-rank fidelity. */
class SteeredRunTest {

    static LanguageModel model;
    static SteeringOperator dense;
    static long[] prompt;

    @BeforeAll
    static void build() {
        model = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
        dense = OperatorBuilder.full(model, model.tokenizer().encode("The dog barked at the cat in the garden"),
                3, DataType.FLOAT32, r -> { });
        prompt = model.tokenizer().encode("Once upon a time");
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static long[] ids(Generation g) {
        return g.tokens().stream().mapToLong(t -> t.id()).toArray();
    }

    SteeredRun.Result run(double lambda, GenerationParams p, int top) {
        return SteeredRun.run(model, prompt, p, m -> new Injector(dense, lambda, m, DataType.FLOAT32),
                dense.conceptIds(), top);
    }

    @Test
    void unsteeredAndZeroStrengthRunsGiveTheGeneratorsTokens() {
        for (GenerationParams p : new GenerationParams[] {GenerationParams.greedy(20),
                new GenerationParams(20, 1.0, 40, 0.95, 11)}) {
            Generation plain = Generator.generate(model, prompt, p, Hooks.NONE);
            SteeredRun.Result unsteered = SteeredRun.run(model, prompt, p, null, dense.conceptIds(), 0);
            SteeredRun.Result zero = run(0, p, 5);
            assertArrayEquals(ids(plain), ids(unsteered.generation()));
            assertArrayEquals(ids(plain), ids(zero.generation()));
            assertEquals(plain.completion(), zero.generation().completion());
            for (SteeredRun.Step s : zero.steps()) {
                assertEquals(0, s.kl(), 1e-12, "lambda 0 changes no distribution");
                assertEquals(s.logprob(), s.unsteeredLogprob(), 1e-9);
                assertEquals(0, s.addedNorm());
            }
            // fluency of the unsteered text = exp(-mean of the model's own log-probabilities), 1e-9 relative
            double nll = plain.tokens().stream().mapToDouble(t -> -t.logprob()).average().orElseThrow();
            assertEquals(Math.exp(nll), unsteered.perplexity(), 1e-9 * Math.exp(nll));
        }
    }

    /**
     * The lockstep pair (what the Steer page streams) against two separate runs: the same tokens, log-probabilities,
     * steps and scores, bit for bit; the callbacks alternate normal, steered, normal, ... while both run.
     */
    @Test
    void pairDecodesInLockstepAndGivesTheSeparateRunsResults() {
        for (GenerationParams p : new GenerationParams[] {GenerationParams.greedy(24),
                new GenerationParams(24, 1.0, 40, 0.95, 7)}) {
            double lambda = 4.0;
            SteeredRun.Result normal = SteeredRun.run(model, prompt, p, null, dense.conceptIds(), 0);
            SteeredRun.Result steered = run(lambda, p, 5);
            java.util.List<Integer> sides = new java.util.ArrayList<>();
            java.util.List<Integer> indices = new java.util.ArrayList<>();
            java.util.List<SteeredRun.Result> both = SteeredRun.pair(model, prompt, p, null, 0,
                    m -> new Injector(dense, lambda, m, DataType.FLOAT32), 5, dense.conceptIds(), (side, st) -> {
                        sides.add(side);
                        indices.add(st.index());
                    });
            for (int i = 0; i < 2; i++) {
                SteeredRun.Result a = i == 0 ? normal : steered;
                SteeredRun.Result b = both.get(i);
                assertArrayEquals(ids(a.generation()), ids(b.generation()));
                assertEquals(a.generation().tokens(), b.generation().tokens());
                assertEquals(a.generation().completion(), b.generation().completion());
                assertEquals(a.generation().finishReason(), b.generation().finishReason());
                assertEquals(a.steps(), b.steps());
                assertEquals(a.perplexity(), b.perplexity());
                assertEquals(a.conceptScore(), b.conceptScore());
            }
            assertFalse(java.util.Arrays.equals(ids(normal.generation()), ids(steered.generation())),
                    "strength 4 changes the continuation");
            int n = normal.steps().size();
            int s = steered.steps().size();
            assertEquals(n + s, sides.size());
            // while both run, token k of the normal side comes right before token k of the steered side
            for (int k = 0; k < Math.min(n, s); k++) {
                assertEquals(0, sides.get(2 * k), "event " + 2 * k);
                assertEquals(1, sides.get(2 * k + 1), "event " + (2 * k + 1));
                assertEquals(k, indices.get(2 * k));
                assertEquals(k, indices.get(2 * k + 1));
            }
            for (int e = 2 * Math.min(n, s); e < sides.size(); e++) {
                assertEquals(n > s ? 0 : 1, sides.get(e), "the longer side finishes alone");
            }
        }
    }

    /**
     * An injector whose hooks are surrounded by two read hooks at the injection site, so that the residual before the
     * injection and the vector actually added are measured, at the last position of every forward call (one call per
     * step: the prompt, then one token at a time).
     */
    static final class Measured implements Steerer {
        final Injector inner;
        final List<double[]> calls = new ArrayList<>(); // {||h||, ||h' - h||} at the last position
        private float[] before;

        Measured(Injector inner) {
            this.inner = inner;
        }

        static float[] last(NDArray x) {
            long d = x.getShape().get(2);
            return x.get(new NDIndex(":, -1, :")).reshape(d).toFloatArray();
        }

        @Override
        public Hooks hooks() {
            Hooks injection = inner.hooks();
            Site at = Site.residPre(dense.layer() - 1);
            Hooks.Builder b = Hooks.builder().add(at, (s, x, c) -> {
                before = last(x);
                return x;
            });
            for (Site s : injection.sites()) {
                injection.at(s).forEach(h -> b.add(s, h));
            }
            return b.add(at, (s, x, c) -> {
                float[] after = last(x);
                double h = 0;
                double added = 0;
                for (int i = 0; i < after.length; i++) {
                    h += (double) before[i] * before[i];
                    added += ((double) after[i] - before[i]) * ((double) after[i] - before[i]);
                }
                calls.add(new double[] {Math.sqrt(h), Math.sqrt(added)});
                return x;
            }).build();
        }

        @Override
        public double strength() {
            return inner.strength();
        }

        @Override
        public double lastDirectionNorm() {
            return inner.lastDirectionNorm();
        }

        @Override
        public double lastResidualNorm() {
            return inner.lastResidualNorm();
        }
    }

    @Test
    void stepsReportNormsAndTheLargestProbabilityShifts() {
        Measured[] measured = new Measured[1];
        SteeredRun.Result r = SteeredRun.run(model, prompt, GenerationParams.greedy(16),
                m -> measured[0] = new Measured(new Injector(dense, 2.0, m, DataType.FLOAT32)), dense.conceptIds(), 5);
        assertEquals(r.generation().tokens().size(), r.steps().size());
        assertNotNull(r.conceptScore());
        // step k's numbers come from the forward call that gave step k's logits: the prompt's call, then one per token
        assertTrue(measured[0].calls.size() >= r.steps().size(), "one measured call per step");
        for (SteeredRun.Step s : r.steps()) {
            assertTrue(s.residualNorm() > 0 && s.directionNorm() > 0);
            double[] m = measured[0].calls.get(s.index());
            // the reported norms against the residual and the change measured in the stream (float32: 1e-5 relative)
            assertEquals(m[0], s.residualNorm(), 1e-5 * m[0], "||h|| at step " + s.index());
            assertEquals(m[1], s.addedNorm(), 1e-5 * m[1], "norm of the added vector at step " + s.index());
            // and the paper's |lambda| ||h|| / 2 (METHOD.md section 5) against the measured change
            assertEquals(2.0 * m[0] / 2, m[1], 1e-5 * m[1], "lambda ||h|| / 2 at step " + s.index());
            assertTrue(s.kl() > 0);
            assertTrue(s.raised().size() <= 5 && !s.raised().isEmpty());
            for (int i = 0; i < s.raised().size(); i++) {
                SteeredRun.Shift x = s.raised().get(i);
                assertTrue(x.after() > x.before());
                if (i > 0) {
                    SteeredRun.Shift prev = s.raised().get(i - 1);
                    assertTrue(prev.after() - prev.before() >= x.after() - x.before());
                }
            }
            for (SteeredRun.Shift x : s.lowered()) {
                assertTrue(x.after() < x.before());
            }
            assertEquals(s.logprob(), r.generation().tokens().get(s.index()).logprob(), 1e-9);
        }
        Generation plain = Generator.generate(model, prompt, GenerationParams.greedy(16), Hooks.NONE);
        assertFalse(java.util.Arrays.equals(ids(plain), ids(r.generation())), "lambda 2 changes the text");
        System.out.printf("steer overhead: %.3f ms/token steered vs %.3f unsteered%n", r.msPerToken(),
                r.referenceMsPerToken());
    }

    @Test
    void lowRankFidelityIsOneAtFullRankAndLowerBelow() {
        Fidelity exact = Fidelity.of(model, dense, OperatorBuilder.lowRank(dense, dense.dim(), 0));
        assertEquals(1.0, exact.minCosine(), 1e-5, "full-rank factors: float32 SVD round-off only");
        SteeringOperator lr = OperatorBuilder.lowRank(dense, 0, 0.99);
        Fidelity f = Fidelity.of(model, dense, lr);
        SteeringOperator tiny = OperatorBuilder.lowRank(dense, 2, 0);
        Fidelity g = Fidelity.of(model, dense, tiny);
        assertTrue(f.meanCosine() > g.meanCosine(), f + " vs " + g);
        assertTrue(OperatorBuilder.energyKept(dense, lr) >= 0.99 - 1e-6);
        System.out.printf("stories260K-text, 'The dog barked at the cat in the garden' (T_c=%d, d=%d) at layer 3: "
                        + "full %d bytes; 99%% energy rank %d, %d bytes, cos(v) mean %.4f min %.4f, cos(a) mean %.4f "
                        + "min %.4f; rank 2: cos(v) mean %.4f%n", dense.tokens(), dense.dim(), dense.storedValues() * 4,
                lr.lowRank().rank(), lr.storedValues() * 4, f.meanCosine(), f.minCosine(), f.meanRunningCosine(),
                f.minRunningCosine(), g.meanCosine());
    }
}
