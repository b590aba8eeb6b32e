package lab.steering.web;

import lab.steering.service.Refusal;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import java.util.Locale;
import java.util.TreeSet;
import lab.steering.config.LabConfig;
import lab.steering.jacobian.Analysis;
import lab.steering.jacobian.Target;
import lab.steering.model.LanguageModel;
import lab.steering.service.JacobianJobs;
import lab.steering.service.JacobianService;
import lab.steering.service.ModelRegistry;
import lab.steering.service.WorkLimiter;
import lab.steering.service.Texts;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/**
 * The detached Jacobian of a prompt: POST /api/jacobian (the analysis), /api/jacobian/export (the stack as a
 * safetensors file) and /api/jacobian/jobs (the analysis as a job with progress and cancellation). Validates and
 * delegates; every heavy request goes through the service's bounded executor (429 when it is full).
 */
@Path("/api/jacobian")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class JacobianResource {

    /** Largest topK the API accepts (bounded further by the model's hidden size). */
    public static final int MAX_TOP_K = 64;

    @Inject
    ModelRegistry registry;
    @Inject
    JacobianService service;
    @Inject
    JacobianJobs jobs;
    @Inject
    LabConfig config;

    @POST
    public Analysis.Result analyze(JacobianRequest req) {
        return service.analyze(check(req, false));
    }

    @POST
    @Path("export")
    @Produces({MediaType.APPLICATION_OCTET_STREAM, MediaType.APPLICATION_JSON})
    public Response export(JacobianRequest req) {
        JacobianService.Export e = service.export(check(req, true));
        return Response.ok((StreamingOutput) out -> e.file().write(out), MediaType.APPLICATION_OCTET_STREAM_TYPE)
                .header("Content-Disposition", "attachment; filename=\"" + e.filename() + "\"")
                .build();
    }

    @POST
    @Path("jobs")
    public Response submit(JacobianRequest req, @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        JacobianJobs.View v = jobs.submit(check(req, false), idempotencyKey);
        return Response.status(202).entity(v).header("Location", "/api/jacobian/jobs/" + v.id())
                .header(JobsResource.JOB_ID_HEADER, v.id()).build();
    }

    @GET
    @Path("jobs/{id}")
    public JacobianJobs.View job(@PathParam("id") String id) {
        return jobs.get(id).orElseThrow(() -> unknownJob(id));
    }

    @DELETE
    @Path("jobs/{id}")
    public Response cancel(@PathParam("id") String id) {
        return Response.status(202).entity(jobs.cancel(id).orElseThrow(() -> unknownJob(id))).build();
    }

    private static Refusal unknownJob(String id) {
        return Refusal.notFound("unknown_job", "job '" + id + "' does not exist (or was dropped)");
    }

    JacobianService.Request check(JacobianRequest req, boolean export) {
        return check(req, export, registry, config, service);
    }

    /** Checks every field, naming the first bad one, then the request's estimated size. */
    public static JacobianService.Request check(JacobianRequest req, boolean export, ModelRegistry registry,
                                                LabConfig config, JacobianService service) {
        return check(req, export, registry, config, service, true);
    }

    /**
     * As above; without {@code ordinary} the analysis leaves out the ordinary Jacobian (comparisons show spectra
     * only), and the method and memory checks count only what it computes.
     */
    public static JacobianService.Request check(JacobianRequest req, boolean export, ModelRegistry registry,
                                                LabConfig config, JacobianService service, boolean ordinary) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        LanguageModel model = registry.require(req.model());
        if (req.prompt() == null || req.prompt().isEmpty()) {
            throw Refusal.invalidField("prompt", "must not be empty");
        }
        DataType dtype = switch (lower(req.dtype(), "float32")) {
            case "float32" -> DataType.FLOAT32;
            case "float64" -> DataType.FLOAT64;
            default -> throw Refusal.invalidField("dtype", "must be float32 or float64, got '" + req.dtype() + "'");
        };
        Analysis.Method wanted = switch (lower(req.method(), "auto")) { // null: auto
            case "auto" -> null;
            case "full" -> Analysis.Method.FULL;
            case "lanczos" -> Analysis.Method.LOW_RANK;
            default -> throw Refusal.invalidField("method", "must be auto, full or lanczos, got '" + req.method() + "'");
        };
        if (export && wanted == Analysis.Method.LOW_RANK) {
            throw Refusal.invalidField("method", "an export writes the full stack: use auto or full, not lanczos");
        }
        Target.Mode mode = switch (lower(req.mode(), "cumulative")) {
            case "cumulative" -> Target.Mode.CUMULATIVE;
            case "layerwise" -> Target.Mode.LAYERWISE;
            default -> throw Refusal.invalidField("mode", "must be cumulative or layerwise, got '" + req.mode() + "'");
        };
        Target.Component component = switch (lower(req.component(), "layer")) {
            case "layer" -> Target.Component.LAYER;
            case "attn" -> Target.Component.ATTN;
            case "mlp" -> Target.Component.MLP;
            default -> throw Refusal.invalidField("component", "must be layer, attn or mlp, got '"
                    + req.component() + "'");
        };
        int d = model.config().hiddenSize();
        int maxTopK = Math.min(d, MAX_TOP_K);
        int topK = req.topK() == null ? 8 : req.topK();
        if (topK < 1 || topK > maxTopK) {
            throw Refusal.invalidField("topK", "must be between 1 and " + maxTopK + " (min(d, " + MAX_TOP_K
                    + ") for model '" + model.id() + "'), got " + topK);
        }
        int numLayers = model.config().numLayers();
        int[] layers = layers(req.layers(), numLayers);
        Target exportTarget = Target.output(numLayers);
        if (export) {
            if (req.layers() != null && req.layers().isArray()) {
                if (layers.length != 1) {
                    throw Refusal.invalidField("layers", "an export takes one layer (or none: the model output), got "
                            + layers.length);
                }
                exportTarget = new Target(layers[0], mode, component);
            }
            layers = new int[0];
        }
        boolean bothSigns = req.bothSigns() != null && req.bothSigns();
        long[] ids = Texts.encode(model, req.prompt(), "prompt", 0);
        // the method: as asked, or (auto) the one estimated to be faster of those that fit (JacobianService.choose);
        // each has its own token limit
        int maxFull = config.jacobian().maxTokens();
        int maxLowRank = config.jacobian().maxTokensLowRank();
        Analysis.Options full = service.options(Analysis.Method.FULL, dtype, topK, layers, mode, component, bothSigns);
        Analysis.Options lowRank = service.options(Analysis.Method.LOW_RANK, dtype, topK, layers, mode, component,
                bothSigns);
        if (!ordinary) {
            full = full.withoutOrdinary();
            lowRank = lowRank.withoutOrdinary();
        }
        Analysis.Options options;
        if (wanted == Analysis.Method.FULL || (wanted == null && export)) {
            if (ids.length > maxFull) {
                throw Refusal.invalidField("prompt", "is " + ids.length + " tokens; the full method takes at most "
                        + maxFull + " (lab.jacobian.max-tokens)" + (export ? "" : "; method lanczos takes up to "
                        + maxLowRank));
            }
            options = full;
        } else if (wanted == Analysis.Method.LOW_RANK) {
            if (ids.length > maxLowRank) {
                throw Refusal.invalidField("prompt", "is " + ids.length + " tokens; method lanczos takes at most "
                        + maxLowRank + " (lab.jacobian.max-tokens-low-rank)");
            }
            options = lowRank;
        } else if (ids.length <= maxLowRank || ids.length <= maxFull) { // auto: by estimated memory and time
            options = service.choose(model, ids.length, ids.length <= maxFull ? full : null,
                    ids.length <= maxLowRank ? lowRank : null);
        } else {
            throw Refusal.invalidField("prompt", "is " + ids.length + " tokens; the analysis takes at most "
                    + Math.max(maxFull, maxLowRank) + " (lab.jacobian.max-tokens-low-rank)");
        }
        JacobianService.Cost cost = service.cost(model, ids.length, options, export);
        if (cost.tooLarge()) {
            Refusal e = new Refusal(Refusal.Kind.TOO_LARGE, "too_large",
                    String.format(Locale.ROOT, "the %s analysis of %d"
                            + " tokens of model '%s' in %s needs about %.0f MB (limit %.0f MB, %s) and"
                            + " roughly %.0f s; use a shorter prompt or float32",
                    export ? "export (full method)" : options.method().apiName(), ids.length, model.id(),
                    dtype == DataType.FLOAT64 ? "float64" : "float32", cost.megabytes(), cost.limitMegabytes(),
                    cost.limitedBy(), cost.seconds()))
                    .detail("method", options.method().apiName())
                    .detail("estimateMb", round1(cost.megabytes()))
                    .detail("limitMb", round1(cost.limitMegabytes()))
                    .detail("limitedBy", cost.limitedBy())
                    .detail("estimateSeconds", round1(cost.seconds()));
            if (cost.deviceFreeMegabytes() != null) {
                e.detail("deviceFreeMb", round1(cost.deviceFreeMegabytes()));
            }
            throw e;
        }
        return new JacobianService.Request(model, req.prompt(), ids, options, exportTarget);
    }

    /** "auto" (METHOD.md's sweep), "none", or a list of layers 1..L (sorted, duplicates dropped). */
    static int[] layers(JsonNode node, int numLayers) {
        if (node == null || node.isNull() || (node.isTextual() && node.asText().equalsIgnoreCase("auto"))) {
            return Analysis.defaultLayers(numLayers);
        }
        if (node.isTextual() && node.asText().equalsIgnoreCase("none")) {
            return new int[0];
        }
        if (!node.isArray()) {
            throw Refusal.invalidField("layers", "must be \"auto\", \"none\" or a list of layers 1.." + numLayers
                    + ", got " + node);
        }
        TreeSet<Integer> out = new TreeSet<>();
        for (JsonNode n : node) {
            if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < 1 || n.asInt() > numLayers) {
                throw Refusal.invalidField("layers", "each layer must be an integer 1.." + numLayers + ", got " + n);
            }
            out.add(n.asInt());
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    private static String lower(String value, String absent) {
        return value == null ? absent : value.trim().toLowerCase(Locale.ROOT);
    }

    private static double round1(double x) {
        return Math.round(x * 10) / 10.0;
    }
}
