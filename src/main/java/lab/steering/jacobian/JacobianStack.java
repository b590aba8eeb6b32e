package lab.steering.jacobian;

/**
 * The equivalent linear system of one prompt and target: {@code y = sum_i J_i x_i + c}. Plain arrays, row-major.
 *
 * @param jacobian (T, d_out * d_in): jacobian[i][r * d + k] = dy_r / dx_i,k
 * @param inputs   (T, d): the x_i (input embeddings, or the residual entering the layer for layerwise targets)
 * @param output   (d): y as the model computed it
 * @param constant (d): c, the frozen network at x = 0 (zero for architectures without biases)
 * @param dtype    "float32" or "float64": the precision every op ran in
 */
public record JacobianStack(long[] ids, int dim, double[][] jacobian, double[][] inputs, double[] output,
                            double[] constant, String dtype) {

    public int tokens() {
        return ids.length;
    }

    /** sum_i J_i x_i + c, in double. */
    public double[] reconstruct() {
        double[] y = constant.clone();
        for (int i = 0; i < tokens(); i++) {
            double[] j = jacobian[i];
            double[] x = inputs[i];
            for (int r = 0; r < dim; r++) {
                double s = 0;
                int off = r * dim;
                for (int k = 0; k < dim; k++) {
                    s += j[off + k] * x[k];
                }
                y[r] += s;
            }
        }
        return y;
    }

    /** ||y - (sum_i J_i x_i + c)|| / ||y|| (the paper's reconstruction error). */
    public double relativeError() {
        return relativeError(output, reconstruct());
    }

    public static double relativeError(double[] y, double[] approx) {
        double num = 0;
        double den = 0;
        for (int r = 0; r < y.length; r++) {
            num += (y[r] - approx[r]) * (y[r] - approx[r]);
            den += y[r] * y[r];
        }
        return Math.sqrt(num / den);
    }

    public static double norm(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x * x;
        }
        return Math.sqrt(s);
    }
}
