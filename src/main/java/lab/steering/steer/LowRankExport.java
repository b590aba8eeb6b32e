package lab.steering.steer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import lab.steering.model.SafetensorsWriter;

/**
 * A low-rank operator for other tools ({@code GET /api/operators/{id}/export?format=lowrank}): the stored factors as
 * a safetensors file whose metadata says, in JSON, everything needed to apply them without the app.
 * <ul>
 *   <li>tensors (F32, row-major): {@code u} [T_c, d, r], {@code s} [T_c, r], {@code v} [T_c, d, r], with
 *       {@code J_i ~= u[i] diag(s[i]) v[i]^T};</li>
 *   <li>{@code __metadata__}: {@code format} = "steering-lab-lowrank" and {@code steering_lab}, a JSON object:
 *       version, model, fingerprint, layer, rank, dim, tokens, conceptPrompt, conceptIds, fidelity (the build's
 *       measurement, null for an imported operator) and {@code convention} (where and how it is applied).</li>
 * </ul>
 * Applying it, per position k of a text (prompt and generated alike), with x_k the input embedding (HF
 * hidden_states[0]) and h_k the residual entering 0-based decoder layer {@code layer - 1} (HF
 * hidden_states[layer - 1]): {@code i = k mod T_c}, {@code v_k = u[i] (s[i] * (v[i]^T x_k))}, {@code a_k = sum_{j<=k}
 * v_j}, {@code h_k <- h_k + lambda * a_k * ||h_k|| / (2 ||a_k||)}. In PyTorch:
 * {@code h + lam * a * h.norm(dim=-1, keepdim=True) / (2 * a.norm(dim=-1, keepdim=True))}.
 * scripts/lowrank_steer.py reads and applies it with numpy alone.
 */
public final class LowRankExport {

    public static final String FORMAT = "steering-lab-lowrank";
    public static final String VERSION = "1";
    private static final ObjectMapper JSON = new ObjectMapper();

    private LowRankExport() {
    }

    /**
     * @param fidelity the build report's fidelity (JSON), or null
     */
    public static byte[] encode(SteeringOperator op, String fingerprint, String conceptPrompt, JsonNode fidelity) {
        if (!op.isLowRank()) {
            throw new IllegalArgumentException("the operator is stored dense");
        }
        long t = op.tokens();
        long d = op.dim();
        long r = op.lowRank().rank();
        ObjectNode meta = JSON.createObjectNode();
        meta.put("version", VERSION).put("model", op.modelId()).put("fingerprint", fingerprint)
                .put("layer", op.layer()).put("rank", r).put("dim", d).put("tokens", t)
                .put("conceptPrompt", conceptPrompt);
        var ids = meta.putArray("conceptIds");
        for (long id : op.conceptIds()) {
            ids.add(id);
        }
        meta.set("fidelity", fidelity);
        ObjectNode c = meta.putObject("convention");
        c.put("site", "the residual entering 0-based decoder layer layer-1, HF hidden_states[layer-1] (layer = the "
                + "split layer l_s; the operator is the detached Jacobian of finalnorm(hidden_states[layer]) with "
                + "respect to the input embeddings)");
        c.put("x", "input embeddings after any embedding scaling, HF hidden_states[0], BOS included where the "
                + "tokenizer adds it");
        c.put("factors", "u[i] (d x r) diag(s[i]) v[i]^T (r x d) ~= J_i; column j of u[i] and of v[i] is the j-th "
                + "left and right singular vector of concept token i");
        c.put("apply", "for every position k (prompt and generated): i = k mod tokens; v_k = u[i] @ (s[i] * "
                + "(v[i].T @ x_k)); a_k = sum_{j<=k} v_j; h_k <- h_k + lambda * a_k * ||h_k|| / (2 ||a_k||)");
        c.put("pytorch", "h + lam * a * h.norm(dim=-1, keepdim=True) / (2 * a.norm(dim=-1, keepdim=True))");
        SafetensorsWriter w = new SafetensorsWriter()
                .add("u", "F32", Injector.flatten(op.lowRank().u()), t, d, r)
                .add("s", "F32", Injector.flatten(op.lowRank().s()), t, r)
                .add("v", "F32", Injector.flatten(op.lowRank().v()), t, d, r);
        try {
            w.metadata("format", FORMAT).metadata("steering_lab", JSON.writeValueAsString(meta));
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            w.write(out);
            return out.toByteArray();
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
