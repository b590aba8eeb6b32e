package lab.steering.steer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;
import java.util.ArrayList;
import java.util.List;
import lab.steering.model.LanguageModel;

/**
 * The additive baseline (ActAdd style) for comparison with an operator at the same split layer l_s:
 * {@code v = mean_k h_k(concept) - mean_k h_k(contrast)}, the residuals entering layer l_s - 1 (HF
 * hidden_states[l_s - 1], where the operator is injected), averaged over positions. An empty contrast (a tokenizer
 * without BOS and an empty contrast prompt) subtracts nothing. Plain arrays, no tensors.
 *
 * @param layer      split layer l_s (1..L), as for an operator
 * @param vector     v (d)
 * @param conceptIds the concept prompt's ids
 * @param contrastIds the contrast prompt's ids (may be empty)
 */
public record SteeringVector(String modelId, int layer, double[] vector, long[] conceptIds, long[] contrastIds) {

    public int dim() {
        return vector.length;
    }

    public double norm() {
        double s = 0;
        for (double x : vector) {
            s += x * x;
        }
        return Math.sqrt(s);
    }

    /** Builds v from two forward passes of the model. */
    public static SteeringVector build(LanguageModel model, long[] conceptIds, long[] contrastIds, int layer) {
        return build(model, conceptIds, contrastIds, new int[] {layer}).get(0);
    }

    /**
     * One vector per layer of {@code layers} (each 1..L), from two forward passes in all: each pass captures the
     * residuals of every layer asked for.
     */
    public static List<SteeringVector> build(LanguageModel model, long[] conceptIds, long[] contrastIds,
                                             int[] layers) {
        for (int layer : layers) {
            if (layer < 1 || layer > model.config().numLayers()) {
                throw new IllegalArgumentException("layer must be in 1.." + model.config().numLayers() + ", got "
                        + layer);
            }
        }
        if (conceptIds.length == 0) {
            throw new IllegalArgumentException("empty concept prompt");
        }
        double[][] concept = meanResiduals(model, conceptIds, layers);
        double[][] contrast = contrastIds.length > 0 ? meanResiduals(model, contrastIds, layers) : null;
        List<SteeringVector> out = new ArrayList<>();
        for (int i = 0; i < layers.length; i++) {
            double[] v = concept[i].clone();
            if (contrast != null) {
                for (int k = 0; k < v.length; k++) {
                    v[k] -= contrast[i][k];
                }
            }
            out.add(new SteeringVector(model.id(), layers[i], v, conceptIds, contrastIds));
        }
        return out;
    }

    /** Mean over positions of the residual entering layer {@code layer - 1}, for each of {@code layers}. */
    static double[][] meanResiduals(LanguageModel model, long[] ids, int[] layers) {
        double[][] out = new double[layers.length][];
        Hooks.Builder capture = Hooks.builder();
        for (int i = 0; i < layers.length; i++) {
            int at = i;
            capture.add(Site.residPre(layers[i] - 1), (site, h, ctx) -> {
                out[at] = h.get(0).mean(new int[] {0}).toType(DataType.FLOAT64, false).toDoubleArray();
                return h;
            });
        }
        Hooks hooks = capture.build();
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray input = m.create(ids, new Shape(1, ids.length));
            model.transformer().forward(input, null, hooks);
        }
        return out;
    }
}
