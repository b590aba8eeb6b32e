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
import java.io.IOException;
import java.net.URI;
import java.time.OffsetDateTime;
import java.util.Arrays;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.service.steering.OperatorService;
import lab.steering.store.OperatorLibrary;
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
    lab.steering.service.models.ModelRegistry registry;
    @Inject
    OperatorLibrary library;
    @Inject
    ObjectMapper json;

    /** An operator as the API shows it (never its tensors: see export). */
    public record OperatorView(long id, String name, String description, List<String> tags, String model,
                               String fingerprint, String conceptPrompt, long[] conceptIds, int layer, String form,
                               Integer rank, String dtype, long sizeBytes, String sha256, OffsetDateTime createdAt,
                               JsonNode build) {
    }

    OperatorView view(OperatorRecord r) {
        try {
            return new OperatorView(r.id, r.name, r.description, Arrays.asList(r.tags), r.modelId,
                    r.modelFingerprint, r.conceptPrompt, json.readValue(r.conceptIds, long[].class), r.layer, r.form,
                    r.rank, r.dtype, r.sizeBytes, r.sha256, r.createdAt, r.build == null ? null : json.readTree(r.build));
        } catch (IOException e) {
            throw new IllegalStateException("operator " + r.id + ": stored JSON is not readable", e);
        }
    }

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    public Response build(SteeringRequests.Build req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        OperatorService.Built b = steering.build(steering.plan(SteeringRequests.build(req)), idempotencyKey);
        return Response.created(URI.create("/api/operators/" + b.operator().id)).entity(view(b.operator()))
                .header(JobsResource.JOB_ID_HEADER, b.job().id().toString()).build();
    }

    @GET
    public List<OperatorView> list(@QueryParam("model") String model, @QueryParam("q") String q,
                                   @QueryParam("limit") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                                   String limit) {
        return library.search(model, q, SteeringRequests.limit(limit)).stream().map(this::view).toList();
    }

    @GET
    @Path("/{id}")
    public OperatorView get(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                            String id) {
        return get(Forms.id(id, "an operator"));
    }

    OperatorView get(long id) {
        return view(steering.record(id));
    }

    @PATCH
    @Path("/{id}")
    @Consumes(MediaType.APPLICATION_JSON)
    public OperatorView patch(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id,
                              @RequestBody(content = @Content(schema = @Schema(
                                      implementation = SteeringRequests.Patch.class)))
                              com.fasterxml.jackson.databind.JsonNode body)
            throws com.fasterxml.jackson.core.JsonProcessingException {
        long n = Forms.id(id, "an operator");
        return patch(n, SteeringRequests.patch(body, json, "operator"));
    }

    OperatorView patch(long id, SteeringRequests.Patch given) {
        SteeringRequests.Patch req = SteeringRequests.checked(given);
        return view(library.patch(id, req.name(), req.description(), req.tags())
                .orElseThrow(() -> Refusal.notFound("unknown_operator", "operator " + id + " does not exist")));
    }

    @DELETE
    @Path("/{id}")
    public Response delete(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                           String id) {
        return delete(Forms.id(id, "an operator"));
    }

    Response delete(long id) {
        if (!library.delete(id)) {
            throw Refusal.notFound("unknown_operator", "operator " + id + " does not exist");
        }
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
        List<String> tagList = SteeringRequests.importFields(name, description, tags);
        OperatorRecord r = steering.importFile(body, model, name, description, tagList, sha256);
        return Response.created(URI.create("/api/operators/" + r.id)).entity(view(r)).build();
    }
}
