package lab.steering.steer;

/**
 * A steering operator (METHOD.md section 5): the cumulative detached Jacobian stack J_C of a concept prompt at a
 * split layer, [T_c, d, d], stored dense or as per-token low-rank SVD factors. Plain arrays, no tensors.
 *
 * @param modelId    the model it was built on
 * @param conceptIds the concept prompt's token ids (BOS included when the tokenizer adds it)
 * @param layer      split layer l_s: J_C describes finalnorm(residual after l_s layers); it is injected into the
 *                   residual entering layer l_s - 1 (HF hidden_states[l_s - 1])
 * @param dim        d
 * @param full       per token d*d row-major (null in the low-rank form)
 * @param lowRank    per token factors (null in the full form)
 */
public record SteeringOperator(String modelId, long[] conceptIds, int layer, int dim, float[][] full,
                               LowRankFactors lowRank) {

    /**
     * J_i ~= U_i diag(S_i) V_i^T for each concept token i.
     *
     * @param u per token d*r row-major (column j = j-th left singular vector)
     * @param s per token r singular values
     * @param v per token d*r row-major (column j = j-th right singular vector)
     */
    public record LowRankFactors(int rank, float[][] u, float[][] s, float[][] v) {
    }

    public int tokens() {
        return conceptIds.length;
    }

    public boolean isLowRank() {
        return lowRank != null;
    }

    /** Numbers stored: T_c d^2 in the full form, T_c r (2d + 1) in the low-rank form. */
    public long storedValues() {
        return isLowRank() ? (long) tokens() * lowRank.rank() * (2L * dim + 1) : (long) tokens() * dim * dim;
    }
}
