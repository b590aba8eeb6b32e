package lab.steering.bench;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lab.steering.jacobian.Spectrum;
import lab.steering.jacobian.Svd;
import lab.steering.jacobian.TokenDecoder;
import lab.steering.model.LanguageModel;
import lab.steering.steer.EvalSuite;
import lab.steering.steer.Fidelity;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeringOperator;

/**
 * Why the operators of a model steer toward their concepts or not, from the operators alone (no generation). For the
 * first concepts of a suite, at a split layer, the dense operator J_C of each concept prompt and:
 * <ul>
 *   <li>per concept: the Frobenius norm of the last token's J (the prompt's final punctuation, in the shipped suite)
 *   against the mean of the others, and the stable rank of the last J and of [J_0 ... J_{T-1}];</li>
 *   <li>per prompt of the suite: the operator's running sum at the prompt's last position,
 *   {@code a = sum_k J_C[k mod T_c] x_k} (x_k: the prompt's input embeddings; what the injection adds there, up to
 *   its scale), for every concept; the mean cosine between two concepts' {@code a} (near 1: the injection is the
 *   prompt's, whatever the concept), and the mean cosine of a concept's {@code a} with the concept prompt's own
 *   output {@code y_C = sum_i J_C[i] x_i^C} against that with the other concepts' outputs (the gap is what is
 *   specific to the concept);</li>
 *   <li>for the last prompt, the top tokens of each concept's {@code y_C} and {@code a} through lm_head.</li>
 * </ul>
 * <pre>scripts/bench.sh operator-specificity [--model DIR] [--suite FILE] [--concepts 10] [--prompts 5] [--layer L]</pre>
 * docs/training.md (session 10) has the committed model's figures.
 */
public final class OperatorSpecificity {

    private OperatorSpecificity() {
    }

    public static void main(String[] args) {
        System.setProperty("ai.djl.offline", "true");
        Map<String, String> a = SteeringEvaluation.args(args);
        Path folder = Path.of(a.getOrDefault("model", "models/steering-lab-base"));
        Map<String, String> cut = new java.util.HashMap<>(a);
        cut.putIfAbsent("concepts", "10");
        cut.putIfAbsent("prompts", "5");
        EvalSuite suite = SteeringEvaluation.suite(cut);
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu(), DataType.FLOAT32)) {
            int layer = a.containsKey("layer") ? Integer.parseInt(a.get("layer"))
                    : OperatorBuilder.defaultLayer(m.config().numLayers());
            int d = m.config().hiddenSize();
            System.out.printf(Locale.ROOT, "model %s, layer %d, %d concepts x %d prompts%n", m.id(), layer,
                    suite.concepts().size(), suite.prompts().size());
            System.out.println("concept   tokens  |J_last|_F  mean |J_i|_F (others)  stable rank J_last  [J_0..J_T-1]");
            List<SteeringOperator> ops = new ArrayList<>();
            List<double[]> outputs = new ArrayList<>();
            for (EvalSuite.Concept c : suite.concepts()) {
                long[] ids = m.tokenizer().encode(c.conceptPrompt());
                SteeringOperator op = OperatorBuilder.full(m, ids, layer, DataType.FLOAT32, r -> { });
                ops.add(op);
                outputs.add(runningSum(m, op, ids));
                int t = op.tokens();
                double others = 0;
                double[][] all = new double[t][];
                for (int i = 0; i < t; i++) {
                    all[i] = widen(op.full()[i]);
                    if (i < t - 1) {
                        others += Math.sqrt(frobeniusSq(all[i]));
                    }
                }
                Spectrum last = Svd.top(all[t - 1], d, 1);
                Spectrum concat = Svd.concatenated(all, d, 1);
                System.out.printf(Locale.ROOT, "%-9s %6d  %10.1f  %22.1f  %18.1f  %12.1f%n", c.name(), t,
                        Math.sqrt(frobeniusSq(all[t - 1])), t > 1 ? others / (t - 1) : 0, last.stableRank(),
                        concat.stableRank());
            }
            System.out.println("prompt                                      cos(a_c, a_c')  cos(a_c, y_c)  cos(a_c, y_c')");
            double[] sums = new double[3];
            for (String prompt : suite.prompts()) {
                long[] promptIds = m.tokenizer().encode(prompt);
                List<double[]> as = new ArrayList<>();
                for (SteeringOperator op : ops) {
                    as.add(runningSum(m, op, promptIds));
                }
                int n = ops.size();
                double between = 0;
                double own = 0;
                double other = 0;
                for (int i = 0; i < n; i++) {
                    own += Fidelity.cosine(as.get(i), outputs.get(i));
                    for (int j = 0; j < n; j++) {
                        if (i != j) {
                            between += Fidelity.cosine(as.get(i), as.get(j));
                            other += Fidelity.cosine(as.get(i), outputs.get(j));
                        }
                    }
                }
                int pairs = Math.max(1, n * (n - 1));
                double[] row = {between / pairs, own / n, other / pairs};
                for (int k = 0; k < 3; k++) {
                    sums[k] += row[k] / suite.prompts().size();
                }
                System.out.printf(Locale.ROOT, "%-42.42s  %14.3f  %13.3f  %14.3f%n", prompt, row[0], row[1], row[2]);
            }
            System.out.printf(Locale.ROOT, "%-42s  %14.3f  %13.3f  %14.3f%n", "mean", sums[0], sums[1], sums[2]);
            String last = suite.prompts().get(suite.prompts().size() - 1);
            long[] lastIds = m.tokenizer().encode(last);
            double[][] vectors = new double[2 * ops.size()][];
            for (int i = 0; i < ops.size(); i++) {
                vectors[2 * i] = outputs.get(i);
                vectors[2 * i + 1] = runningSum(m, ops.get(i), lastIds);
            }
            List<TokenDecoder.Ranked> ranked = new TokenDecoder(m).byLogit(vectors, 6, false, DataType.FLOAT32);
            System.out.printf(Locale.ROOT, "top tokens through lm_head: y_C (the concept prompt's output) | a_C at the "
                    + "last position of \"%s\"%n", last);
            for (int i = 0; i < ops.size(); i++) {
                System.out.printf(Locale.ROOT, "%-9s %s | %s%n", suite.concepts().get(i).name(),
                        tokens(ranked.get(2 * i)), tokens(ranked.get(2 * i + 1)));
            }
        }
    }

    private static String tokens(TokenDecoder.Ranked r) {
        StringBuilder b = new StringBuilder();
        for (TokenDecoder.Scored t : r.positive()) {
            b.append(b.length() == 0 ? "" : " ").append('`').append(t.token().replace("\n", "\\n")).append('`');
        }
        return b.toString();
    }

    /** {@code sum_k J[k mod T] x_k} over every position k of {@code ids}, by the injector's own code. */
    static double[] runningSum(LanguageModel m, SteeringOperator op, long[] ids) {
        double[] a = new double[op.dim()];
        for (double[] v : Fidelity.vectors(m, op, ids)) {
            for (int i = 0; i < a.length; i++) {
                a[i] += v[i];
            }
        }
        return a;
    }

    private static double frobeniusSq(double[] m) {
        double s = 0;
        for (double v : m) {
            s += v * v;
        }
        return s;
    }

    private static double[] widen(float[] f) {
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }
}
