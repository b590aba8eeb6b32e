package lab.steering.web;

import com.fasterxml.jackson.core.JsonProcessingException;
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
import java.util.LinkedHashSet;
import java.util.List;
import lab.steering.eval.InvalidSetting;
import lab.steering.eval.SteeringBenchmark;
import lab.steering.eval.SuiteCheck;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.evaluation.EvaluationService;
import lab.steering.service.models.ModelRegistry;
import lab.steering.steer.EvalSuite;
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

    public static final int MAX_STRENGTHS = 8;
    public static final int MAX_LAYERS = 4;
    public static final int MAX_NEW_TOKENS = 128;
    /** Most continuations one run may generate. */
    public static final long MAX_OUTPUTS = 10_000;
    public static final List<Double> DEFAULT_STRENGTHS = List.of(1.0, 2.0, 4.0);

    @Inject
    ModelRegistry registry;
    @Inject
    EvaluationService service;
    @Inject
    ObjectMapper json;

    @POST
    public Response start(EvaluationRequest req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        EvaluationService.View v = service.submit(check(req, registry, service, json), idempotencyKey);
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

    /** Checks every field, naming the first bad one (a suite's own field as {@code suite.concepts[2].words[0]}). */
    public static EvaluationService.Plan check(EvaluationRequest req, ModelRegistry registry, EvaluationService service,
                                               ObjectMapper json) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        LanguageModel model = registry.require(req.model());
        EvalSuite suite;
        Long suiteId = null;
        boolean inline = req.suite() != null && !req.suite().isNull();
        if (inline && req.suiteId() != null) {
            throw Refusal.invalidField("suite", "give suite (inline) or suiteId (stored), not both");
        }
        if (inline) {
            if (!req.suite().isObject()) {
                throw Refusal.invalidField("suite", "must be a suite object {name, concepts, prompts}, got "
                        + req.suite().getNodeType().name().toLowerCase(java.util.Locale.ROOT));
            }
            try {
                suite = json.treeToValue(req.suite(), EvalSuite.class);
            } catch (JsonProcessingException e) {
                throw Refusal.invalidField("suite", "not a suite: " + e.getOriginalMessage());
            }
            suite = suite(suite, "suite.");
        } else if (req.suiteId() != null) {
            suiteId = req.suiteId();
            long sid = suiteId;
            suite = service.suite(sid).orElseThrow(() -> Refusal.invalidField("suiteId", "suite " + sid
                    + " does not exist"));
        } else {
            suite = EvalSuite.defaultSuite();
        }
        if (req.concepts() != null && req.concepts() < 1) {
            throw Refusal.invalidField("concepts", "at least 1, got " + req.concepts());
        }
        if (req.prompts() != null && req.prompts() < 2) {
            throw Refusal.invalidField("prompts", "at least 2 (some choose, the rest are reported), got "
                    + req.prompts());
        }
        suite = suite.first(req.concepts() == null ? Integer.MAX_VALUE : req.concepts(),
                req.prompts() == null ? Integer.MAX_VALUE : req.prompts());
        List<String> methods = req.methods() == null ? SteeringBenchmark.METHODS : req.methods();
        if (methods.isEmpty()) {
            throw Refusal.invalidField("methods", "name at least one of " + SteeringBenchmark.METHODS);
        }
        for (String m : methods) {
            if (!SteeringBenchmark.METHODS.contains(m)) {
                throw Refusal.invalidField("methods", "unknown method '" + m + "', known: "
                        + SteeringBenchmark.METHODS);
            }
        }
        if (new LinkedHashSet<>(methods).size() != methods.size()) {
            throw Refusal.invalidField("methods", "a method is named twice");
        }
        List<Double> strengths = req.strengths() == null ? DEFAULT_STRENGTHS : req.strengths();
        if (strengths.isEmpty() || strengths.size() > MAX_STRENGTHS) {
            throw Refusal.invalidField("strengths", "1 to " + MAX_STRENGTHS + " strengths, got " + strengths.size());
        }
        for (Double s : strengths) {
            if (s == null || !Double.isFinite(s) || Math.abs(s) > 100) {
                throw Refusal.invalidField("strengths", "each a number between -100 and 100, got " + s);
            }
        }
        if (new LinkedHashSet<>(strengths).size() != strengths.size()) {
            throw Refusal.invalidField("strengths", "a strength is named twice");
        }
        int numLayers = model.config().numLayers();
        List<Integer> layers = req.layers() == null ? List.of() : req.layers();
        if (layers.size() > MAX_LAYERS) {
            throw Refusal.invalidField("layers", "at most " + MAX_LAYERS + " layers, got " + layers.size());
        }
        for (Integer l : layers) {
            if (l == null || l < 1 || l > numLayers) {
                throw Refusal.invalidField("layers", "each a split layer in 1.." + numLayers + " for model '"
                        + model.id() + "', got " + l);
            }
        }
        if (new LinkedHashSet<>(layers).size() != layers.size()) {
            throw Refusal.invalidField("layers", "a layer is named twice");
        }
        int tokens = req.maxNewTokens() == null ? 24 : req.maxNewTokens();
        if (tokens < 1 || tokens > MAX_NEW_TOKENS) {
            throw Refusal.invalidField("maxNewTokens", "must be between 1 and " + MAX_NEW_TOKENS + ", got " + tokens);
        }
        double temperature = req.temperature() == null ? 0 : req.temperature();
        if (!(temperature >= 0 && temperature <= 2)) {
            throw Refusal.invalidField("temperature", "must be between 0 (greedy) and 2, got " + temperature);
        }
        double fraction = req.selectFraction() == null ? 0.3 : req.selectFraction();
        if (!(fraction >= 0.05 && fraction <= 0.95)) {
            throw Refusal.invalidField("selectFraction", "must be between 0.05 and 0.95, got " + fraction);
        }
        int rank = req.rank() == null ? 8 : req.rank();
        if (rank < 1 || rank > model.config().hiddenSize()) {
            throw Refusal.invalidField("rank", "must be between 1 and " + model.config().hiddenSize() + " (d), got "
                    + rank);
        }
        int resamples = req.resamples() == null ? 1000 : req.resamples();
        if (resamples < 100 || resamples > 10_000) {
            throw Refusal.invalidField("resamples", "must be between 100 and 10000, got " + resamples);
        }
        SteeringBenchmark.Settings settings = new SteeringBenchmark.Settings(methods, strengths, layers, tokens,
                temperature, req.seed() == null ? 7 : req.seed(), fraction, rank, resamples);
        long steered = settings.orderedMethods().stream().filter(SteeringBenchmark.STEERED::contains).count();
        long outputs = (long) suite.concepts().size() * suite.prompts().size()
                * (2 + steered * strengths.size() * Math.max(1, layers.size()));
        if (outputs > MAX_OUTPUTS) {
            throw Refusal.invalidField("strengths", "the run would generate up to " + outputs + " continuations,"
                    + " more than " + MAX_OUTPUTS + ": fewer strengths, layers, methods, concepts or prompts");
        }
        return new EvaluationService.Plan(model.id(), suiteId, suite, settings);
    }

    /** The suite checked, a problem named as {@code prefix} + its field. */
    static EvalSuite suite(EvalSuite s, String prefix) {
        try {
            return SuiteCheck.check(s);
        } catch (InvalidSetting e) {
            String root = prefix.isEmpty() ? e.field().replaceAll("[\\[.].*", "") : prefix.replaceAll("\\.$", "");
            throw new Refusal(Refusal.Kind.INVALID, "invalid_" + root, prefix + e.getMessage()).detail("field",
                    prefix + e.field());
        }
    }
}
