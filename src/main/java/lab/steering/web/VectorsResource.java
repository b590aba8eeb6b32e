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
import lab.steering.service.steering.SteeringService;
import lab.steering.service.steering.VectorService;
import lab.steering.store.VectorRecord;
import org.eclipse.microprofile.openapi.annotations.enums.SchemaType;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.parameters.Parameter;
import org.eclipse.microprofile.openapi.annotations.parameters.RequestBody;

/**
 * /api/vectors: build, list, read, rename, delete, export and import saved steering vectors (the library's kind
 * {@code vector}, beside the operators). Export and import speak GGUF control vectors, the files llama.cpp loads.
 */
@Path("/api/vectors")
@Produces(MediaType.APPLICATION_JSON)
public class VectorsResource {

    @Inject
    VectorService vectors;
    @Inject
    LibraryViews views;
    @Inject
    SteeringService steering;
    @Inject
    ObjectMapper json;

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    public Response build(SteeringRequests.VectorBuild req) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        SteeringRequests.required(req.conceptPrompt(), "conceptPrompt");
        VectorRecord r = vectors.build(new VectorService.BuildRequest(req.model(), req.name(), req.description(),
                req.tags(), req.conceptPrompt(), req.contrastPrompt(), req.layer(), req.layers()));
        return Response.created(URI.create("/api/vectors/" + r.id)).entity(views.vector(r)).build();
    }

    @GET
    public List<LibraryViews.VectorView> list(@QueryParam("model") String model, @QueryParam("q") String q,
                                 @QueryParam("limit") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                                 String limit) {
        return vectors.search(model, q, SteeringRequests.limit(limit)).stream().map(views::vector).toList();
    }

    @GET
    @Path("/{id}")
    public LibraryViews.VectorView get(
            @PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id) {
        return views.vector(vectors.record(Forms.id(id, "a vector")));
    }

    @PATCH
    @Path("/{id}")
    @Consumes(MediaType.APPLICATION_JSON)
    public LibraryViews.VectorView patch(
            @PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id,
            @RequestBody(content = @Content(schema = @Schema(implementation = SteeringRequests.Patch.class)))
            JsonNode body)
            throws com.fasterxml.jackson.core.JsonProcessingException {
        long n = Forms.id(id, "a vector");
        SteeringRequests.Patch req = SteeringRequests.patch(body, json, "vector");
        return views.vector(vectors.patch(n, req.name(), req.description(), req.tags()));
    }

    @DELETE
    @Path("/{id}")
    public Response delete(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String id) {
        long n = Forms.id(id, "a vector");
        vectors.delete(n);
        return Response.noContent().build();
    }

    /**
     * The vector as a GGUF control vector ({@code format=gguf}, the default and only format): the stored bytes,
     * unchanged, which llama.cpp's {@code --control-vector} loads.
     */
    @GET
    @Path("/{id}/export")
    @Produces({MediaType.APPLICATION_OCTET_STREAM, MediaType.APPLICATION_JSON})
    public Response export(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String given,
                           @QueryParam("format") String format) {
        long id = Forms.id(given, "a vector");
        if (format != null && !format.equals("gguf")) {
            throw Refusal.invalidField("format", "must be \"gguf\" (a GGUF control vector), got \"" + format + "\"");
        }
        VectorRecord r = vectors.record(id);
        return Forms.download(vectors.export(id), "vector-" + id + ".gguf", r.sha256);
    }

    /**
     * A GGUF control vector (the request body, any content type): one the app exported, or one another tool wrote
     * (then {@code model} is required). Checked in full before anything is written.
     */
    @POST
    @Path("/import")
    @Consumes(MediaType.WILDCARD)
    public Response importFile(byte[] body, @QueryParam("model") String model, @QueryParam("name") String name,
                               @QueryParam("description") String description, @QueryParam("tags") String tags,
                               @QueryParam("sha256") String sha256) {
        List<String> tagList = SteeringRequests.tags(tags);
        VectorRecord r = vectors.importFile(body, model, name, description, tagList, sha256);
        return Response.created(URI.create("/api/vectors/" + r.id)).entity(views.vector(r)).build();
    }
}
