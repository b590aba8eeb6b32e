package lab.steering.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.io.IOException;
import java.time.OffsetDateTime;
import java.util.Arrays;
import java.util.List;
import lab.steering.steer.ControlVector;
import lab.steering.store.OperatorRecord;
import lab.steering.store.SteeringRun;
import lab.steering.store.VectorRecord;

/**
 * The library as the API and the pages show it: operators, vectors and saved runs as views (their stored JSON read
 * back; never their tensors, which export gives).
 */
@ApplicationScoped
public class LibraryViews {

    @Inject
    ObjectMapper json;

    /** An operator as the API shows it (never its tensors: see export). */
    public record OperatorView(long id, String name, String description, List<String> tags, String model,
                               String fingerprint, String conceptPrompt, long[] conceptIds, int layer, String form,
                               Integer rank, String dtype, long sizeBytes, String sha256, OffsetDateTime createdAt,
                               JsonNode build) {
    }

    /** An operator as the API and the pages show it. */
    public OperatorView operator(OperatorRecord r) {
        try {
            return new OperatorView(r.id, r.name, r.description, Arrays.asList(r.tags), r.modelId,
                    r.modelFingerprint, r.conceptPrompt, json.readValue(r.conceptIds, long[].class), r.layer, r.form,
                    r.rank, r.dtype, r.sizeBytes, r.sha256, r.createdAt, r.build == null ? null : json.readTree(r.build));
        } catch (IOException e) {
            throw new IllegalStateException("operator " + r.id + ": stored JSON is not readable", e);
        }
    }

    /**
     * A vector as the API shows it (never its values: see export).
     *
     * @param layers          the app's layers (as an operator's split layer)
     * @param ggufDirections  the same layers as llama.cpp numbers them: the GGUF tensor direction.N of each
     * @param source          "built" or "imported"
     */
    public record VectorView(String kind, long id, String name, String description, List<String> tags, String model,
                             String fingerprint, String conceptPrompt, String contrastPrompt, long[] conceptIds,
                             long[] contrastIds, int[] layers, int[] ggufDirections, int dim, String dtype,
                             String source, long sizeBytes, String sha256, OffsetDateTime createdAt) {
    }

    /** A vector as the API and the pages show it. */
    public VectorView vector(VectorRecord r) {
        try {
            return new VectorView("vector", r.id, r.name, r.description, Arrays.asList(r.tags), r.modelId,
                    r.modelFingerprint, r.conceptPrompt, r.contrastPrompt, json.readValue(r.conceptIds, long[].class),
                    json.readValue(r.contrastIds, long[].class), r.layers,
                    Arrays.stream(r.layers).map(ControlVector::ggufIndex).toArray(), r.dim, r.dtype, r.source,
                    r.sizeBytes, r.sha256, r.createdAt);
        } catch (IOException e) {
            throw new IllegalStateException("vector " + r.id + ": stored JSON is not readable", e);
        }
    }

    /** A run in a list: the request and both completions, without the per-token details. */
    public record RunSummary(long id, OffsetDateTime createdAt, String model, Long operatorId, String kind,
                             JsonNode request, String normalCompletion, String steeredCompletion) {
    }

    /** A whole run. */
    public record RunView(long id, OffsetDateTime createdAt, String model, Long operatorId, String kind,
                          JsonNode request, JsonNode normal, JsonNode steered, JsonNode diagnostics) {
    }

    /** A run in a list. */
    public RunSummary summary(SteeringRun r) {
        return new RunSummary(r.id, r.createdAt, r.modelId, r.operatorId, r.kind, tree(r.request),
                tree(r.normal).path("completion").asText(), tree(r.steered).path("completion").asText());
    }

    /** A whole run. */
    public RunView run(SteeringRun r) {
        return new RunView(r.id, r.createdAt, r.modelId, r.operatorId, r.kind, tree(r.request), tree(r.normal),
                tree(r.steered), tree(r.diagnostics));
    }

    private JsonNode tree(String s) {
        try {
            return json.readTree(s);
        } catch (IOException e) {
            throw new IllegalStateException("stored run JSON is not readable", e);
        }
    }
}
