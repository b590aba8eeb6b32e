package lab.steering.jacobian;

/**
 * Which linear map to take: the output y at the last position after the final norm (layer = L, the model's output),
 * or a layer-sweep target (METHOD.md section 4): the final norm applied to the residual after {@code layer} decoder
 * layers ({@link Component#LAYER}) or to the output of that layer's attention or MLP block (no residual).
 *
 * @param layer     1..L: the target is built from decoder layer {@code layer - 1}'s output (HF hidden_states[layer])
 * @param mode      CUMULATIVE: with respect to the input embeddings; LAYERWISE: with respect to the residual stream
 *                  entering decoder layer {@code layer - 1}, at all positions
 * @param component LAYER, ATTN or MLP
 */
public record Target(int layer, Mode mode, Component component) {

    public enum Mode { CUMULATIVE, LAYERWISE }

    public enum Component { LAYER, ATTN, MLP }

    /** The model's own output: cumulative, whole layer stack. */
    public static Target output(int layers) {
        return new Target(layers, Mode.CUMULATIVE, Component.LAYER);
    }

    public Target {
        if (layer < 1) {
            throw new IllegalArgumentException("layer must be >= 1, got " + layer);
        }
    }
}
