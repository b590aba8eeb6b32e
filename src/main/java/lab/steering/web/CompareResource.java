package lab.steering.web;

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
import lab.steering.service.comparison.CompareRequest;
import lab.steering.service.comparison.ComparisonService;
import org.eclipse.microprofile.openapi.annotations.enums.SchemaType;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.parameters.Parameter;

/**
 * The architecture comparison: POST /api/compare (one prompt at once, or a batch as a background job), GET
 * /api/compare (the stored comparisons, newest first), GET /api/compare/{id} (one, with progress while it runs) and
 * DELETE /api/compare/{id} (cancel). Validates and delegates to {@link ComparisonService}.
 */
@Path("/api/compare")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class CompareResource {

    @Inject
    ComparisonService service;

    @POST
    public Response compare(CompareRequest req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        ComparisonService.Plan plan = service.plan(req);
        if (req.prompt() != null) {
            ComparisonService.View v = service.runNow(plan);
            return Response.ok(v).build();
        }
        ComparisonService.View v = service.submit(plan, idempotencyKey);
        return Response.status(202).entity(v).header("Location", "/api/compare/" + v.id()).build();
    }

    @GET
    public List<ComparisonService.Listed> list(
            @QueryParam("limit") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String limit) {
        Integer n = Forms.integer(limit, "limit");
        if (n != null && (n < 1 || n > 1000)) {
            throw Refusal.invalidField("limit", "must be between 1 and 1000, got " + n);
        }
        return service.list(n == null ? 50 : n);
    }

    @GET
    @Path("{id}")
    public ComparisonService.View get(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                                      String id) {
        long n = id(id);
        return service.get(n).orElseThrow(() -> unknown(id));
    }

    @DELETE
    @Path("{id}")
    public Response cancel(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id) {
        long n = id(id);
        return Response.status(202).entity(service.cancel(n).orElseThrow(() -> unknown(id))).build();
    }

    static long id(String id) {
        return Forms.id(id, "a comparison");
    }

    static Refusal unknown(String id) {
        return Refusal.notFound("unknown_comparison", "comparison " + id + " does not exist");
    }


}
