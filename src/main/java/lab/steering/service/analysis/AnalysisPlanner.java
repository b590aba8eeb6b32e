package lab.steering.service.analysis;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.Locale;
import java.util.TreeSet;
import lab.steering.config.LabConfig;
import lab.steering.jacobian.Analysis;
import lab.steering.jacobian.Target;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.Texts;
import lab.steering.service.models.ModelRegistry;

/**
 * Plans an analysis: checks every field of a request (naming the first bad one), picks the method (as asked, or the
 * one estimated to finish first of those that fit) and refuses what would not fit the limits (413 with the
 * estimate). The JSON API, the Analyze page, exports and comparisons all plan through here.
 */
@ApplicationScoped
public class AnalysisPlanner {

    /** Largest topK the API accepts (bounded further by the model's hidden size). */
    public static final int MAX_TOP_K = 64;

    /**
     * What a client asks for (the JSON body of /api/jacobian, or the Analyze form); absent fields take their
     * defaults; enum-like fields are text so that a bad value is refused naming its field.
     */
    public record Spec(String model, String prompt, String dtype, Integer topK, String method, JsonNode layers,
                       String mode, String component, Boolean bothSigns) {
    }

    @Inject
    ModelRegistry registry;
    @Inject
    LabConfig config;
    @Inject
    JacobianService service;

    /** Checks every field, naming the first bad one, then the request's estimated size. */
    public JacobianService.Request plan(Spec req, boolean export) {
        return plan(req, export, true);
    }

    /**
     * As above; without {@code ordinary} the analysis leaves out the ordinary Jacobian (comparisons show spectra
     * only), and the method and memory checks count only what it computes.
     */
    public JacobianService.Request plan(Spec req, boolean export, boolean ordinary) {
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
