package lab.steering.steer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import lab.steering.hook.HookContext;
import lab.steering.model.LanguageModel;

/**
 * How closely a low-rank operator steers like the dense one it came from, on a test text: the cosine between the
 * injected vectors v_k = J_C[k mod T_c] x_k of the two forms at every position k, and between their running sums
 * a_k (whose direction is what the injection adds).
 *
 * @param tokens            positions compared (the test text's tokens)
 * @param meanCosine        mean over k of cos(v_k full, v_k low-rank)
 * @param minCosine         its minimum
 * @param meanRunningCosine mean over k of cos(a_k full, a_k low-rank)
 * @param minRunningCosine  its minimum
 */
public record Fidelity(String text, int tokens, double meanCosine, double minCosine, double meanRunningCosine,
                       double minRunningCosine) {

    /** The fixed test text (plain words any tokenizer encodes). */
    public static final String TEST_TEXT = "Once upon a time, there was a little girl who went to the park with "
            + "her dog. They played in the sun and then walked home together.";

    public static Fidelity of(LanguageModel model, SteeringOperator full, SteeringOperator lowRank) {
        long[] ids = model.tokenizer().encode(TEST_TEXT);
        double[][] a = vectors(model, full, ids);
        double[][] b = vectors(model, lowRank, ids);
        int d = full.dim();
        double[] ra = new double[d];
        double[] rb = new double[d];
        double sum = 0;
        double min = Double.POSITIVE_INFINITY;
        double sumRun = 0;
        double minRun = Double.POSITIVE_INFINITY;
        for (int k = 0; k < ids.length; k++) {
            for (int i = 0; i < d; i++) {
                ra[i] += a[k][i];
                rb[i] += b[k][i];
            }
            double c = cosine(a[k], b[k]);
            double cr = cosine(ra, rb);
            sum += c;
            min = Math.min(min, c);
            sumRun += cr;
            minRun = Math.min(minRun, cr);
        }
        return new Fidelity(TEST_TEXT, ids.length, sum / ids.length, min, sumRun / ids.length, minRun);
    }

    /** v_k for every position of {@code ids}, by the injector's own code, in float64. */
    public static double[][] vectors(LanguageModel model, SteeringOperator op, long[] ids) {
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            Injector inj = new Injector(op, 1, m, DataType.FLOAT64);
            NDArray[] embedded = new NDArray[1]; // HF hidden_states[0]: after any embedding scale and positions
            model.transformer().forward(m.create(ids, new Shape(1, ids.length)), null, lab.steering.hook.Hooks.builder()
                    .add(lab.steering.hook.Site.embed(), (s, e, c) -> embedded[0] = e).build());
            NDArray x = embedded[0].get(0).toType(DataType.FLOAT64, false);
            double[] flat = inj.vectors(x, new HookContext(0, ids.length)).toDoubleArray();
            double[][] out = new double[ids.length][];
            for (int k = 0; k < ids.length; k++) {
                out[k] = java.util.Arrays.copyOfRange(flat, k * op.dim(), (k + 1) * op.dim());
            }
            return out;
        }
    }

    /** cos(a, b); 1 when both are zero, 0 when one is. */
    public static double cosine(double[] a, double[] b) {
        double ab = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += a[i] * b[i];
            aa += a[i] * a[i];
            bb += b[i] * b[i];
        }
        return aa == 0 || bb == 0 ? (aa == bb ? 1 : 0) : ab / Math.sqrt(aa * bb);
    }
}
