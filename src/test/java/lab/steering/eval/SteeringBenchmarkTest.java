package lab.steering.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CancellationException;
import lab.steering.SharedModels;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import lab.steering.steer.EvalSuite;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The benchmark on the real tiny checkpoint stories260K-text (skipped when absent), two concepts of the default suite
 * and four prompts, with a letter-count embedder (a known, independent stand-in for MiniLM): the run reproduces
 * exactly; the unsteered and prompted texts are {@link Generator}'s own greedy texts; the perplexity is the one a
 * separate teacher-forced pass gives; each method's chosen setting is the best of the selection grid recomputed
 * from the outputs; and cancellation stops the run.
 */
class SteeringBenchmarkTest {

    static LanguageModel model;
    static EvalSuite suite;
    static final SteeringBenchmark.Settings SETTINGS = new SteeringBenchmark.Settings(SteeringBenchmark.METHODS,
            List.of(0.5, 2.0), List.of(2, 3), 8, 0, 11, 0.25, 4, 200);

    /** 26 letter counts: texts sharing letters are close, a blank text is the zero vector. */
    static final Embedder LETTERS = new Embedder() {
        @Override
        public String name() {
            return "letter counts";
        }

        @Override
        public float[] embed(String text) {
            float[] v = new float[26];
            for (char ch : text.toLowerCase(Locale.ROOT).toCharArray()) {
                if (ch >= 'a' && ch <= 'z') {
                    v[ch - 'a']++;
                }
            }
            return v;
        }
    };

    @BeforeAll
    static void load() {
        model = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
        suite = EvalSuite.defaultSuite().first(2, 4);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    @Test
    void aRunReproducesExactlyAndChoosesOnTheSelectionPrompts() {
        SteeringBenchmark.Result a = SteeringBenchmark.run(model, suite, SETTINGS, LETTERS, SteeringBenchmark.Progress.NONE);
        SteeringBenchmark.Result b = SteeringBenchmark.run(model, suite, SETTINGS, LETTERS, SteeringBenchmark.Progress.NONE);
        assertEquals(a.outputs(), b.outputs(), "every output and score again");
        assertEquals(a.methods(), b.methods(), "every mean and interval again");
        assertEquals(a.grid(), b.grid());

        assertEquals(1, a.selectPrompts().size());
        assertEquals(3, a.reportPrompts().size());
        // selection: 2 concepts x 1 prompt x (none + prompting + 3 methods x 2 strengths x 2 layers);
        // report: 2 concepts x 3 prompts x (none + prompting + 3 chosen)
        assertEquals(2 * (2 + 12) + 2 * 3 * 5, a.outputs().size());
        for (SteeringBenchmark.MethodSummary m : a.methods()) {
            if (!SteeringBenchmark.STEERED.contains(m.method())) {
                continue;
            }
            double best = Double.NEGATIVE_INFINITY;
            Double strength = null;
            Integer layer = null;
            for (int l : SETTINGS.layers()) {
                for (double s : SETTINGS.strengths()) {
                    double sum = 0;
                    int n = 0;
                    for (SteeringBenchmark.Output o : a.outputs()) {
                        if (o.split().equals("select") && o.method().equals(m.method()) && o.strength() == s
                                && o.layer() == l) {
                            sum += o.scores().aggregate();
                            n++;
                        }
                    }
                    assertEquals(2, n);
                    if (sum / n > best) {
                        best = sum / n;
                        strength = s;
                        layer = l;
                    }
                }
            }
            assertEquals(strength, m.strength(), m.method());
            assertEquals(layer, m.layer(), m.method());
            assertEquals(6, m.outputs(), "2 concepts x 3 report prompts");
            assertNotNull(m.scores().get("aggregate"));
        }
        assertEquals(3, a.grid().stream().filter(g -> g.chosen() && g.strength() != null).count());
    }

    @Test
    void unsteeredAndPromptedTextsAreTheGeneratorsAndPerplexityIsTeacherForced() {
        SteeringBenchmark.Settings s = new SteeringBenchmark.Settings(List.of("prompting"), List.of(1.0), List.of(), 8,
                0, 5, 0.5, 4, 100);
        SteeringBenchmark.Result r = SteeringBenchmark.run(model, suite, s, LETTERS, SteeringBenchmark.Progress.NONE);
        int checked = 0;
        for (SteeringBenchmark.Output o : r.outputs()) {
            String prompt = suite.prompts().get(o.prompt());
            long[] plain = model.tokenizer().encode(prompt);
            long[] ids = o.method().equals("none") ? plain : model.tokenizer().encode(
                    suite.concepts().get(o.concept()).conceptPrompt() + " " + prompt);
            Generation g = Generator.generate(model, ids, GenerationParams.greedy(8), Hooks.NONE);
            assertEquals(g.completion(), o.text(), o.method() + " on prompt " + o.prompt());
            // perplexity of the generated tokens after the plain prompt, from the model's own logits at every position
            long[] gen = g.tokens().stream().mapToLong(t -> t.id()).toArray();
            long[] all = new long[plain.length + gen.length];
            System.arraycopy(plain, 0, all, 0, plain.length);
            System.arraycopy(gen, 0, all, plain.length, gen.length);
            double[][] logits = Generator.allLogits(model, all, Hooks.NONE);
            double nll = 0;
            for (int t = 0; t < gen.length; t++) {
                double[] l = logits[plain.length - 1 + t];
                double z = 0;
                for (double v : l) {
                    z += Math.exp(v);
                }
                nll -= l[(int) gen[t]] - Math.log(z);
            }
            double ppl = Math.exp(nll / gen.length);
            // float32 decoding with a KV cache against one float64-summed pass: 1e-4 relative
            assertEquals(ppl, o.scores().perplexity(), 1e-4 * ppl, o.method() + " perplexity");
            checked++;
        }
        assertEquals(2 * 4 * 2, checked);
    }

    @Test
    void cancellationStopsTheRun() {
        List<String> stages = new ArrayList<>();
        try {
            SteeringBenchmark.run(model, suite, SETTINGS, LETTERS, (stage, f) -> {
                stages.add(stage);
                if (stages.size() == 3) {
                    throw new CancellationException("stop");
                }
            });
        } catch (CancellationException e) {
            assertEquals(3, stages.size());
            return;
        }
        throw new AssertionError("the run did not stop");
    }
}
