package lab.steering.hook;

/** Where inside the network a {@link Site} sits. Names follow TransformerLens. */
public enum Point {
    /** Token embeddings after any scaling: HF hidden_states[0]. Not per layer. */
    EMBED("hook_embed"),
    /** Residual stream entering a layer: HF hidden_states[layer]. */
    RESID_PRE("hook_resid_pre"),
    /** (batch, t, 1) the attention norm's scale rsqrt(mean(x^2) + eps) per position. */
    LN1_SCALE("ln1.hook_scale"),
    /** (batch, heads, t, keys) attention probabilities after softmax. */
    ATTN_PATTERN("attn.hook_pattern"),
    /** (batch, t, 1) the scale of the norm on the attention output (OLMo 2, Gemma 3), per position. */
    LN1_POST_SCALE("ln1_post.hook_scale"),
    /** Attention block output (after o_proj and any post-norm), before it is added to the residual. */
    ATTN_OUT("hook_attn_out"),
    /** Residual stream between attention and MLP. */
    RESID_MID("hook_resid_mid"),
    /** (batch, t, 1) the MLP norm's scale per position. */
    LN2_SCALE("ln2.hook_scale"),
    /**
     * (batch, t, intermediate) the MLP's frozen factor, which multiplies its linear part: act(gate(x)) times up(x)
     * (gated MLPs); up(x) * sigmoid(gate(x)) times gate(x) (Phi-3); act(z)/z times z = fc1(x) (GPT-2).
     */
    MLP_GATE("mlp.hook_gate"),
    /** (batch, t, 1) the scale of the norm on the MLP output (OLMo 2, Gemma 3), per position. */
    LN2_POST_SCALE("ln2_post.hook_scale"),
    /** MLP block output (after down_proj and any post-norm), before it is added to the residual. */
    MLP_OUT("hook_mlp_out"),
    /** Residual stream leaving a layer. */
    RESID_POST("hook_resid_post"),
    /** (batch, t, 1) the final norm's scale per position. Not per layer. */
    FINAL_SCALE("ln_final.hook_scale"),
    /** Output of the final norm, the input of lm_head. Not per layer. */
    FINAL_NORM("ln_final.hook_normalized");

    private final String hookName;

    Point(String hookName) {
        this.hookName = hookName;
    }

    public String hookName() {
        return hookName;
    }

    /** True for points that exist once per layer. */
    public boolean perLayer() {
        return this != EMBED && this != FINAL_NORM && this != FINAL_SCALE;
    }
}
