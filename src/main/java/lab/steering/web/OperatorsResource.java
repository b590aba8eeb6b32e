package lab.steering.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.PATCH;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.net.URI;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.service.steering.OperatorService;
import lab.steering.store.OperatorRecord;
import org.eclipse.microprofile.openapi.annotations.enums.SchemaType;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.parameters.Parameter;
import org.eclipse.microprofile.openapi.annotations.parameters.RequestBody;

/** /api/operators: build, list, read, rename, delete, export and import steering operators. */
@Path("/api/operators")
@Produces(MediaType.APPLICATION_JSON)
public class OperatorsResource {

    @Inject
    OperatorService steering;
    @Inject
    LibraryViews views;
    @Inject
    ObjectMapper json;

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    public Response build(SteeringRequests.Build req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        OperatorService.Built b = steering.build(steering.plan(SteeringRequests.build(req)), idempotencyKey);
        return Response.created(URI.create("/api/operators/" + b.operator().id)).entity(views.operator(b.operator()))
                .header(JobsResource.JOB_ID_HEADER, b.job().id().toString()).build();
    }

    @GET
    public List<LibraryViews.OperatorView> list(@QueryParam("model") String model, @QueryParam("q") String q,
                                   @QueryParam("limit") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                                   String limit) {
        return steering.search(model, q, SteeringRequests.limit(limit)).stream().map(views::operator).toList();
    }

    @GET
    @Path("/{id}")
    public LibraryViews.OperatorView get(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                            String id) {
        return get(Forms.id(id, "an operator"));
    }

    LibraryViews.OperatorView get(long id) {
        return views.operator(steering.record(id));
    }

    @PATCH
    @Path("/{id}")
    @Consumes(MediaType.APPLICATION_JSON)
    public LibraryViews.OperatorView patch(
            @PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id,
            @RequestBody(content = @Content(schema = @Schema(implementation = SteeringRequests.Patch.class)))
            com.fasterxml.jackson.databind.JsonNode body)
            throws com.fasterxml.jackson.core.JsonProcessingException {
        long n = Forms.id(id, "an operator");
        SteeringRequests.Patch req = SteeringRequests.patch(body, json, "operator");
        return views.operator(steering.patch(n, req.name(), req.description(), req.tags()));
    }

    @DELETE
    @Path("/{id}")
    public Response delete(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                           String id) {
        return delete(Forms.id(id, "an operator"));
    }

    Response delete(long id) {
        steering.delete(id);
        return Response.noContent().build();
    }

    /**
     * The operator as a safetensors file: by default the stored bytes, unchanged (the app's own format, which import
     * reads); {@code format=lowrank}, a low-rank operator's factors with JSON metadata for other tools
     * ({@link lab.steering.steer.LowRankExport}, scripts/lowrank_steer.py).
     */
    @GET
    @Path("/{id}/export")
    @Produces({MediaType.APPLICATION_OCTET_STREAM, MediaType.APPLICATION_JSON})
    public Response export(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                           String given, @QueryParam("format") String format) {
        long id = Forms.id(given, "an operator");
        if (format != null && !format.equals("safetensors") && !format.equals("lowrank")) {
            throw Refusal.invalidField("format", "must be \"safetensors\" (the stored file, the default) or "
                    + "\"lowrank\" (the factors for other tools), got \"" + format + "\"");
        }
        OperatorRecord r = steering.record(id);
        if ("lowrank".equals(format)) {
            byte[] factors = steering.exportLowRank(id);
            return Forms.download(factors, "operator-" + id + "-lowrank.safetensors", null);
        }
        return Forms.download(steering.export(id), "operator-" + id + ".safetensors", r.sha256);
    }

    /**
     * A safetensors file as written by export (the request body, any content type). It is checked in full
     * (structure, dtype, shapes, data checksum, then the model's fingerprint) before anything is written.
     */
    @POST
    @Path("/import")
    @Consumes(MediaType.WILDCARD)
    public Response importFile(byte[] body, @QueryParam("model") String model, @QueryParam("name") String name,
                               @QueryParam("description") String description, @QueryParam("tags") String tags,
                               @QueryParam("sha256") String sha256) {
        List<String> tagList = SteeringRequests.tags(tags);
        OperatorRecord r = steering.importFile(body, model, name, description, tagList, sha256);
        return Response.created(URI.create("/api/operators/" + r.id)).entity(views.operator(r)).build();
    }
}
