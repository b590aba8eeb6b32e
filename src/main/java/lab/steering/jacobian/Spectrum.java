package lab.steering.jacobian;

/**
 * Top-k singular triplets of one matrix J = U S V^T (per token J_i, or the token-concatenated [J_0 ... J_{T-1}]).
 *
 * @param singularValues k values, descending
 * @param u              k left singular vectors (output space, length d each)
 * @param v              k right singular vectors (input space, length d for a per-token J_i; null for the
 *                       concatenated matrix, whose right vectors live in T*d)
 * @param frobeniusSq    ||J||_F^2 (exact from a full J; an estimate from the low-rank method, see {@code exact})
 * @param exact          false when frobeniusSq is a randomized estimate
 */
public record Spectrum(double[] singularValues, double[][] u, double[][] v, double frobeniusSq, boolean exact) {

    /** Stable rank R = ||J||_F^2 / S_max^2 (METHOD.md section 4). */
    public double stableRank() {
        double s = singularValues.length == 0 ? 0 : singularValues[0];
        return s == 0 ? 0 : frobeniusSq / (s * s);
    }
}
