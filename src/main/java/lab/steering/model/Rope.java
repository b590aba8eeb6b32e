package lab.steering.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Rotary position embedding in Hugging Face's rotate_half layout: dimension j pairs with j + headDim/2.
 * {@code rope(x) = x * cos + rotateHalf(x) * sin}, where rotateHalf(x) = cat(-x2, x1) is applied as a
 * signed permutation matrix (exact: one nonzero per column).
 */
public final class Rope {

    private final int headDim;
    private final double[] invFreq; // (headDim / 2)

    public Rope(ModelConfig c) {
        this(c.headDim(), c.ropeTheta(), c.ropeScaling());
    }

    /** Rotary embedding with base {@code theta} and optional scaling (Gemma 3's local layers: unscaled). */
    public Rope(int headDim, double theta, ModelConfig.RopeScaling scaling) {
        this.headDim = headDim;
        this.invFreq = inverseFrequencies(headDim, theta, scaling);
    }

    /** HF's default frequencies, then the config's scaling (linear or llama3), in double precision. */
    static double[] inverseFrequencies(int headDim, double theta, ModelConfig.RopeScaling s) {
        int half = headDim / 2;
        double[] f = new double[half];
        for (int j = 0; j < half; j++) {
            f[j] = 1.0 / Math.pow(theta, (2.0 * j) / headDim);
        }
        if (s == null) {
            return f;
        }
        if (s.type().equals("linear")) {
            for (int j = 0; j < half; j++) {
                f[j] /= s.factor();
            }
            return f;
        }
        // llama3: long wavelengths divided by factor, short ones kept, a smooth blend in between.
        double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
        double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
        for (int j = 0; j < half; j++) {
            double wavelen = 2 * Math.PI / f[j];
            if (wavelen > lowWavelen) {
                f[j] = f[j] / s.factor();
            } else if (wavelen >= highWavelen) {
                double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor())
                        / (s.highFreqFactor() - s.lowFreqFactor());
                f[j] = (1 - smooth) * f[j] / s.factor() + smooth * f[j];
            }
        }
        return f;
    }

    /** (t, headDim) cos and sin tables for positions start .. start + t - 1: {@code [cos, sin]}. */
    public NDArray[] tables(NDManager m, int start, int t, DataType dtype) {
        long[] positions = new long[t];
        for (int p = 0; p < t; p++) {
            positions[p] = start + p;
        }
        return tables(m, positions, dtype);
    }

    /** (n, headDim) cos and sin tables for the given positions, one row each: {@code [cos, sin]}. */
    public NDArray[] tables(NDManager m, long[] positions, DataType dtype) {
        int t = positions.length;
        double[] cos = new double[t * headDim];
        double[] sin = new double[t * headDim];
        int half = headDim / 2;
        for (int p = 0; p < t; p++) {
            for (int j = 0; j < half; j++) {
                double a = positions[p] * invFreq[j];
                double c = Math.cos(a);
                double s = Math.sin(a);
                cos[p * headDim + j] = c;
                cos[p * headDim + j + half] = c;
                sin[p * headDim + j] = s;
                sin[p * headDim + j + half] = s;
            }
        }
        Shape shape = new Shape(t, headDim);
        return new NDArray[] {m.create(cos, shape).toType(dtype, false), m.create(sin, shape).toType(dtype, false)};
    }

    /** (headDim, headDim) matrix R with x R = rotateHalf(x) = cat(-x[half:], x[:half]). */
    public NDArray rotateHalfMatrix(NDManager m, DataType dtype) {
        int half = headDim / 2;
        double[] r = new double[headDim * headDim];
        for (int j = 0; j < half; j++) {
            r[(j + half) * headDim + j] = -1; // out[j] = -x[j + half]
            r[j * headDim + j + half] = 1;    // out[j + half] = x[j]
        }
        return m.create(r, new Shape(headDim, headDim)).toType(dtype, false);
    }
}
