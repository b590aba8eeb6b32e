package lab.steering.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import java.io.IOException;
import java.time.OffsetDateTime;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.store.OperatorLibrary;
import lab.steering.store.SteeringRun;
import org.eclipse.microprofile.openapi.annotations.enums.SchemaType;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.parameters.Parameter;

/** GET /api/runs and /api/runs/{id}: saved steering comparisons. */
@Path("/api/runs")
@Produces(MediaType.APPLICATION_JSON)
public class RunsResource {

    @Inject
    OperatorLibrary library;
    @Inject
    ObjectMapper json;

    /** A run in a list: the request and both completions, without the per-token details. */
    public record RunSummary(long id, OffsetDateTime createdAt, String model, Long operatorId, String kind,
                             JsonNode request, String normalCompletion, String steeredCompletion) {
    }

    /** A whole run. */
    public record RunView(long id, OffsetDateTime createdAt, String model, Long operatorId, String kind,
                          JsonNode request, JsonNode normal, JsonNode steered, JsonNode diagnostics) {
    }

    @GET
    public List<RunSummary> list(@QueryParam("model") String model,
                                 @QueryParam("operatorId") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                                 String operator,
                                 @QueryParam("limit") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                                 String limit) {
        Long operatorId = Forms.longValue(operator, "operatorId");
        Integer given = Forms.integer(limit, "limit");
        int n = given == null ? 50 : given;
        if (n < 1 || n > 500) {
            throw Refusal.invalidField("limit", "must be between 1 and 500, got " + n);
        }
        return library.runs(model, operatorId, n).stream().map(r -> new RunSummary(r.id, r.createdAt, r.modelId,
                r.operatorId, r.kind, tree(r.request), tree(r.normal).path("completion").asText(),
                tree(r.steered).path("completion").asText())).toList();
    }

    @GET
    @Path("/{id}")
    public RunView get(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id) {
        return get(Forms.id(id, "a run"));
    }

    RunView get(long id) {
        SteeringRun r = library.run(id).orElseThrow(() -> Refusal.notFound("unknown_run",
                "run " + id + " does not exist"));
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
