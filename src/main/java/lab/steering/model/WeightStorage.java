package lab.steering.model;

import ai.djl.Device;
import java.util.Locale;

/**
 * How the weights of a bfloat16 or float16 checkpoint are held on the CPU (lab.models.weights, LAB_MODEL_WEIGHTS).
 * Either way every op computes in float32 (or float64 for exact Jacobians) with the same numbers: widening a
 * bfloat16 or float16 weight is exact. float32 and float64 checkpoints, and models on a GPU, load as float32.
 */
public enum WeightStorage {
    /**
     * The weight matrices (projections, MLP, embedding, lm_head) stay in their stored two bytes per element and are
     * widened one decoder layer at a time while it runs (lm_head and the embedding a block of rows at a time); norms,
     * biases and learned positions are float32. Half the memory, slower per token.
     */
    COMPACT,
    /** Everything widened to float32 once at load: twice the memory, no widening per token. */
    FLOAT32;

    /** {@code compact} or {@code float32} (any case). */
    public static WeightStorage parse(String s) {
        try {
            return valueOf(s.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("weight storage '" + s + "' is not compact or float32");
        }
    }

    /** This storage where it applies: on the CPU; on a GPU the weights are converted ({@link #FLOAT32}). */
    public WeightStorage on(Device device) {
        return device.isGpu() ? FLOAT32 : this;
    }

    /**
     * Bytes the weights of a scanned folder take once loaded this way: float32 for every parameter, or with
     * {@link #COMPACT} the folder's own size where that is less (a bfloat16 or float16 checkpoint: the norms that
     * are widened at load are too small to count).
     */
    public long bytes(ModelFolder folder) {
        long float32 = folder.config().parameterCount() * 4;
        return this == COMPACT ? Math.min(float32, folder.weightBytes()) : float32;
    }
}
