package lab.steering.steer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A saved steering vector: one float32 direction of width d for each of one or more layers. Plain arrays, no tensors.
 * <p>
 * Layers use the app's numbering, the same as an operator's split layer l_s (1..L): layer l's direction is added to
 * the residual entering 0-based decoder layer l - 1, HF {@code hidden_states[l - 1]} (see {@link SteeringVector}).
 * llama.cpp numbers a control vector's tensors differently: {@code direction.N} (N >= 1) is added to the output of
 * its 0-based layer N, which is HF {@code hidden_states[N + 1]}; so N = l - 2 ({@link #ggufIndex}), and only app
 * layers 3..L have a llama.cpp counterpart (N = 1..L-2). llama.cpp's N = L - 1 (after the last layer, before the
 * final norm) has no app counterpart.
 *
 * @param layers     ascending, distinct, each >= 1
 * @param directions per layer, {@code dim} values
 */
public record ControlVector(String modelId, int dim, int[] layers, float[][] directions) {

    public ControlVector {
        if (layers.length == 0 || layers.length != directions.length) {
            throw new IllegalArgumentException("need one direction per layer, at least one");
        }
        for (int i = 0; i < layers.length; i++) {
            if (layers[i] < 1 || i > 0 && layers[i] <= layers[i - 1]) {
                throw new IllegalArgumentException("layers must be ascending and >= 1: " + Arrays.toString(layers));
            }
            if (directions[i].length != dim) {
                throw new IllegalArgumentException("layer " + layers[i] + " has " + directions[i].length
                        + " values, not " + dim);
            }
        }
    }

    /** llama.cpp's {@code direction.N} index of app layer {@code layer}: N = layer - 2 (valid when >= 1). */
    public static int ggufIndex(int layer) {
        return layer - 2;
    }

    /** The app layer of llama.cpp's {@code direction.N}: N + 2. */
    public static int appLayer(int ggufIndex) {
        return ggufIndex + 2;
    }

    /** The vectors as the injector takes them (float32 values widened exactly to double). */
    public List<SteeringVector> steeringVectors(long[] conceptIds, long[] contrastIds) {
        List<SteeringVector> out = new ArrayList<>();
        for (int i = 0; i < layers.length; i++) {
            double[] v = new double[dim];
            for (int k = 0; k < dim; k++) {
                v[k] = directions[i][k];
            }
            out.add(new SteeringVector(modelId, layers[i], v, conceptIds, contrastIds));
        }
        return out;
    }

    /** Built vectors as stored: float32, in ascending layer order. */
    public static ControlVector of(List<SteeringVector> vectors) {
        List<SteeringVector> sorted = vectors.stream()
                .sorted(java.util.Comparator.comparingInt(SteeringVector::layer)).toList();
        int d = sorted.get(0).dim();
        int[] layers = sorted.stream().mapToInt(SteeringVector::layer).toArray();
        float[][] dirs = new float[sorted.size()][d];
        for (int i = 0; i < sorted.size(); i++) {
            for (int k = 0; k < d; k++) {
                dirs[i][k] = (float) sorted.get(i).vector()[k];
            }
        }
        return new ControlVector(sorted.get(0).modelId(), d, layers, dirs);
    }

    /** Only this one layer (which must be one of {@link #layers}). */
    public ControlVector only(int layer) {
        for (int i = 0; i < layers.length; i++) {
            if (layers[i] == layer) {
                return new ControlVector(modelId, dim, new int[] {layer}, new float[][] {directions[i]});
            }
        }
        throw new IllegalArgumentException("no layer " + layer + " in " + Arrays.toString(layers));
    }
}
