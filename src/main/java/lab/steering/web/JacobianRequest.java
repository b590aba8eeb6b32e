package lab.steering.web;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Body of POST /api/jacobian, /api/jacobian/export and /api/jacobian/jobs. Absent fields take their defaults;
 * the enum-like fields are strings so that a bad value is answered with the field's name (400 invalid_FIELD).
 *
 * @param model     model id (default: the app's default model)
 * @param prompt    text to analyse (required, not empty; BOS added as the tokenizer's rule says)
 * @param dtype     "float32" (default) or "float64": the precision of every op
 * @param topK      singular values per token, 1..min(d, 64), default 8
 * @param method    "auto" (default), "full" or "lanczos" (not yet available)
 * @param layers    "auto" (default: METHOD.md's sweep), "none", or a list of layers 1..L
 * @param mode      "cumulative" (default) or "layerwise"
 * @param component "layer" (default), "attn" or "mlp"
 * @param bothSigns also decode the opposite sign of every singular vector (default false)
 */
public record JacobianRequest(String model, String prompt, String dtype, Integer topK, String method, JsonNode layers,
                              String mode, String component, Boolean bothSigns) {

    /** The request as the planner reads it. */
    public lab.steering.service.analysis.AnalysisPlanner.Spec spec() {
        return new lab.steering.service.analysis.AnalysisPlanner.Spec(model, prompt, dtype, topK, method, layers, mode,
                component, bothSigns);
    }
}
