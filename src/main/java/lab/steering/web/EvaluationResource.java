package lab.steering.web;

import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.service.evaluation.EvaluationRequest;
import lab.steering.service.evaluation.EvaluationService;
import lab.steering.store.EvaluationStore;
import org.eclipse.microprofile.openapi.annotations.enums.SchemaType;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.parameters.Parameter;

/**
 * The steering benchmark: POST /api/evaluations (a run, as a job: 202 with its id), GET /api/evaluations (newest
 * first), GET /api/evaluations/{id} (status, progress and, when done, per method the chosen strength and layer, the
 * means with intervals and every output), GET /api/evaluations/{id}/export?format=csv|json, DELETE (cancel).
 * Validates and delegates to {@link EvaluationService}.
 */
@Path("/api/evaluations")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class EvaluationResource {

    @Inject
    EvaluationService service;
    @Inject
    ObjectMapper json;

    @POST
    public Response start(EvaluationRequest req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        EvaluationService.View v = service.submit(service.plan(req), idempotencyKey);
        return Response.status(202).entity(v).header("Location", "/api/evaluations/" + v.id()).build();
    }

    @GET
    public List<EvaluationStore.Listed> list(
            @QueryParam("limit") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String limit) {
        Integer n = Forms.integer(limit, "limit");
        if (n != null && (n < 1 || n > 1000)) {
            throw Refusal.invalidField("limit", "must be between 1 and 1000, got " + n);
        }
        return service.list(n == null ? 50 : n);
    }

    @GET
    @Path("{id}")
    public EvaluationService.View get(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                                      String id) {
        return service.get(id(id)).orElseThrow(() -> unknown(id));
    }

    @DELETE
    @Path("{id}")
    public Response cancel(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id) {
        return Response.status(202).entity(service.cancel(id(id)).orElseThrow(() -> unknown(id))).build();
    }

    /** Every output as CSV (one row per output, scores as columns) or the whole view as JSON, as a download. */
    @GET
    @Path("{id}/export")
    @Produces({"text/csv", MediaType.APPLICATION_JSON})
    public Response export(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id,
                           @QueryParam("format") String format) {
        String f = format == null ? "json" : format;
        if (!f.equals("csv") && !f.equals("json")) {
            throw Refusal.invalidField("format", "csv or json, got '" + format + "'");
        }
        EvaluationService.View v = get(id);
        if (v.methods() == null) {
            throw new Refusal(Refusal.Kind.CONFLICT, "not_done", "evaluation " + id + " is " + v.status()
                    + ": there is nothing to export until it is done");
        }
        String name = "evaluation-" + v.id() + "." + f;
        Response.ResponseBuilder b = f.equals("csv")
                ? Response.ok(EvaluationCsv.of(v), "text/csv; charset=UTF-8")
                : Response.ok(v, MediaType.APPLICATION_JSON);
        return b.header("Content-Disposition", "attachment; filename=\"" + name + "\"").build();
    }

    static long id(String id) {
        return Forms.id(id, "an evaluation");
    }

    static Refusal unknown(String id) {
        return Refusal.notFound("unknown_evaluation", "evaluation " + id + " does not exist");
    }


}
