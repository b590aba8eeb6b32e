package lab.steering.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
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
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import lab.steering.config.LabConfig;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.analysis.JacobianService;
import lab.steering.service.comparison.ComparisonService;
import lab.steering.service.models.ModelRegistry;
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

    public static final int MAX_MODELS = 8;
    public static final int MAX_PROMPTS = 500;
    public static final int DEFAULT_VECTORS = 3;

    @Inject
    ModelRegistry registry;
    @Inject
    LabConfig config;
    @Inject
    lab.steering.service.analysis.AnalysisPlanner planner;
    @Inject
    ComparisonService service;

    @POST
    public Response compare(CompareRequest req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        ComparisonService.Plan plan = check(req);
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

    ComparisonService.Plan check(CompareRequest req) {
        return check(req, registry, config, planner, service);
    }

    /** Checks every field, naming the first bad one; each prompt is checked on each model as /api/jacobian would. */
    public static ComparisonService.Plan check(CompareRequest req, ModelRegistry registry, LabConfig config,
                                               lab.steering.service.analysis.AnalysisPlanner planner,
                                               ComparisonService service) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        if (req.models() == null || req.models().isEmpty()) {
            throw Refusal.invalidField("models", "name 1 to " + MAX_MODELS + " models to compare (models: "
                    + registry.ids() + ")");
        }
        if (req.models().size() > MAX_MODELS) {
            throw Refusal.invalidField("models", "at most " + MAX_MODELS + " models, got " + req.models().size());
        }
        Set<String> seen = new HashSet<>();
        List<LanguageModel> models = new ArrayList<>();
        for (String id : req.models()) {
            if (id == null || id.isBlank()) {
                throw Refusal.invalidField("models", "a model id is empty");
            }
            if (!seen.add(id)) {
                throw Refusal.invalidField("models", "model '" + id + "' is named twice");
            }
            models.add(registry.require(id));
        }
        List<String> prompts;
        String batch;
        if (req.prompt() != null && req.prompts() != null && !req.prompts().isNull()) {
            throw Refusal.invalidField("prompts", "give prompt (one prompt) or prompts (a batch), not both");
        }
        if (req.prompt() != null) {
            prompts = List.of(req.prompt());
            batch = "single";
        } else if (req.prompts() == null || req.prompts().isNull()) {
            throw Refusal.invalidField("prompt", "give prompt (one prompt) or prompts (a list, or \"default\" for"
                    + " the 100 everyday phrases)");
        } else if (req.prompts().isTextual() && req.prompts().asText().equals("default")) {
            prompts = service.defaultPhrases();
            batch = "default";
        } else if (req.prompts().isArray()) {
            if (req.prompts().isEmpty() || req.prompts().size() > MAX_PROMPTS) {
                throw Refusal.invalidField("prompts", "a batch has 1 to " + MAX_PROMPTS + " prompts, got "
                        + req.prompts().size());
            }
            prompts = new ArrayList<>();
            for (int i = 0; i < req.prompts().size(); i++) {
                JsonNode p = req.prompts().get(i);
                if (!p.isTextual() || p.asText().isEmpty()) {
                    throw Refusal.invalidField("prompts", "prompts[" + i + "] must be a non-empty string, got " + p);
                }
                prompts.add(p.asText());
            }
            batch = "given";
        } else {
            throw Refusal.invalidField("prompts", "must be a list of prompts or \"default\", got " + req.prompts());
        }
        int vectors = req.vectors() == null ? DEFAULT_VECTORS : req.vectors();
        if (vectors < 1 || vectors > ComparisonService.MAX_VECTORS) {
            throw Refusal.invalidField("vectors", "must be between 1 and " + ComparisonService.MAX_VECTORS
                    + ", got " + vectors);
        }
        JacobianService.Request[][] requests = new JacobianService.Request[prompts.size()][models.size()];
        for (int m = 0; m < models.size(); m++) {
            LanguageModel model = models.get(m);
            // the model output as the only swept layer: the combined spectrum with its decoded vectors, at no cost
            var layers = JsonNodeFactory.instance.arrayNode().add(model.config().numLayers());
            for (int p = 0; p < prompts.size(); p++) {
                JacobianRequest jr = new JacobianRequest(model.id(), prompts.get(p), req.dtype(), req.topK(), "auto",
                        layers, null, null, false);
                try {
                    // the comparison shows spectra only: no ordinary Jacobian (3/4 of an analysis' cost), and the
                    // method and memory checks count without it
                    requests[p][m] = planner.plan(jr.spec(), false, false);
                } catch (Refusal e) {
                    boolean promptField = e.code().equals("invalid_prompt");
                    if (batch.equals("single") || !(promptField || e.code().equals("too_large"))) {
                        throw e; // a field of its own (dtype, topK), or the one prompt: as /api/jacobian names it
                    }
                    Refusal named = new Refusal(e.kind(), promptField ? "invalid_prompts" : e.code(),
                            "prompts[" + p + "] on model '" + model.id() + "': " + e.getMessage());
                    e.details().forEach(named::detail);
                    throw named;
                }
            }
        }
        var first = requests[0][0].options();
        List<ComparisonService.ModelInfo> infos = models.stream().map(ComparisonService.ModelInfo::of).toList();
        return new ComparisonService.Plan(new ComparisonService.Settings(infos, List.copyOf(prompts), batch,
                first.dtype() == ai.djl.ndarray.types.DataType.FLOAT64 ? "float64" : "float32", first.topK(), vectors),
                requests);
    }
}
