package lab.steering.model;

import java.util.List;

/**
 * What distinguishes one decoder family from another, as data. The forward pass ({@link Transformer}) and the weight
 * loader ({@link Weights}) read this record; there is one forward pass for every family.
 *
 * @param modelType     HF {@code model_type}
 * @param norm          RMSNorm or LayerNorm (with bias)
 * @param normOffset    added to every stored norm weight (Gemma stores w and multiplies by 1 + w)
 * @param layout        where the per-layer norms sit
 * @param qkNorm        RMSNorm on the queries and keys before RoPE: none, per head (weight of head_dim) or over the
 *                      whole projection (weight of heads * head_dim)
 * @param mlp           the MLP's form, which also fixes its frozen factor (METHOD.md section 1)
 * @param activation    the MLP's nonlinearity
 * @param positions     rotary or learned absolute position embeddings
 * @param embedScale    multiply the token embeddings by sqrt(hidden_size) (Gemma)
 * @param qkvBias       q, k and v projections have biases (Qwen2, GPT-2)
 * @param denseBias     output projection, MLP projections and norms have biases (GPT-2)
 * @param naming        which Hugging Face tensor names hold the weights
 */
public record Family(
        String modelType,
        NormKind norm,
        double normOffset,
        Layout layout,
        QkNorm qkNorm,
        Mlp mlp,
        Activation activation,
        Positions positions,
        boolean embedScale,
        boolean qkvBias,
        boolean denseBias,
        Naming naming) {

    public enum NormKind { RMS, LAYER }

    /**
     * PRE: norm before attention and before the MLP (Llama). POST: no input norms, a norm on each block's output
     * (OLMo 2). SANDWICH: both (Gemma 3).
     */
    public enum Layout {
        PRE, POST, SANDWICH;

        public boolean preNorms() {
            return this != POST;
        }

        public boolean postNorms() {
            return this != PRE;
        }
    }

    public enum QkNorm { NONE, PER_HEAD, FULL }

    /**
     * GATED: {@code down(act(gate(x)) * up(x))}, frozen factor act(gate(x)). GATED_PHI: the same function, frozen
     * factor {@code up(x) * sigmoid(gate(x))} with gate(x) kept linear (Phi-3, SiLU only). PLAIN:
     * {@code fc2(act(fc1(x)))}, frozen factor act(z)/z (GPT-2).
     */
    public enum Mlp { GATED, GATED_PHI, PLAIN }

    public enum Activation { SILU, GELU_TANH }

    public enum Positions { ROPE, LEARNED }

    /** LLAMA: model.layers.N.self_attn.q_proj ... (most families); PHI3: fused qkv_proj and gate_up_proj; GPT2. */
    public enum Naming { LLAMA, PHI3, GPT2 }

    /** True when the frozen network is affine rather than linear (a constant term c). */
    public boolean hasBiases() {
        return qkvBias || denseBias;
    }

    /** The families this build runs, by model_type. */
    public static final List<Family> ALL = List.of(
            llamaLike("llama", false, QkNorm.NONE),
            llamaLike("mistral", false, QkNorm.NONE),
            llamaLike("qwen2", true, QkNorm.NONE),
            llamaLike("qwen3", false, QkNorm.PER_HEAD),
            new Family("olmo2", NormKind.RMS, 0, Layout.POST, QkNorm.FULL, Mlp.GATED, Activation.SILU,
                    Positions.ROPE, false, false, false, Naming.LLAMA),
            new Family("gemma3_text", NormKind.RMS, 1, Layout.SANDWICH, QkNorm.PER_HEAD, Mlp.GATED,
                    Activation.GELU_TANH, Positions.ROPE, true, false, false, Naming.LLAMA),
            new Family("phi3", NormKind.RMS, 0, Layout.PRE, QkNorm.NONE, Mlp.GATED_PHI, Activation.SILU,
                    Positions.ROPE, false, false, false, Naming.PHI3),
            new Family("gpt2", NormKind.LAYER, 0, Layout.PRE, QkNorm.NONE, Mlp.PLAIN, Activation.GELU_TANH,
                    Positions.LEARNED, false, true, true, Naming.GPT2));

    private static Family llamaLike(String type, boolean qkvBias, QkNorm qk) {
        return new Family(type, NormKind.RMS, 0, Layout.PRE, qk, Mlp.GATED, Activation.SILU, Positions.ROPE, false,
                qkvBias, false, Naming.LLAMA);
    }

    /** The family of a model_type, or null. */
    public static Family of(String modelType) {
        return ALL.stream().filter(f -> f.modelType.equals(modelType)).findFirst().orElse(null);
    }
}
