package lab.steering.web;

import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import lab.steering.generate.GenerationParams;
import lab.steering.service.Refusal;
import lab.steering.service.steering.LibraryEntry;
import lab.steering.service.steering.OperatorService;
import lab.steering.service.steering.SteeringService;

/** Request bodies of the steering API and the field checks they share (each error names its field). */
public final class SteeringRequests {

    private SteeringRequests() {
    }

    /**
     * POST /api/operators.
     *
     * @param layer  split layer l_s, 1..L (default 2L/3)
     * @param form   "full" (default) or "lowrank"
     * @param rank   lowrank only: the rank kept for every concept token (1..d)
     * @param energy lowrank only, instead of rank: keep the smallest rank holding this fraction of every token's
     *               squared Frobenius norm, in (0, 1] (default 0.99)
     */
    public record Build(String name, String description, List<String> tags, String model, String conceptPrompt,
                        Integer layer, String form, Integer rank, Double energy) {
    }

    /** PATCH /api/operators/{id}: absent fields are unchanged. */
    public record Patch(String name, String description, List<String> tags) {
    }

    /** The fields PATCH changes; any other is refused. */
    static final List<String> PATCHABLE = List.of("name", "description", "tags");

    /**
     * A PATCH body of a library item ({@code what}: "operator", "vector"), checked: a JSON object naming only
     * {@link #PATCHABLE} fields (anything else, a layer or a prompt, would be ignored in silence: the item is made
     * from those). Their values are the service's to check ({@link LibraryEntry}).
     */
    static Patch patch(com.fasterxml.jackson.databind.JsonNode body, com.fasterxml.jackson.databind.ObjectMapper json,
                       String what) throws com.fasterxml.jackson.core.JsonProcessingException {
        if (body == null || !body.isObject()) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON object is required");
        }
        for (java.util.Iterator<String> it = body.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!PATCHABLE.contains(f)) {
                throw Refusal.invalidField(f, "cannot be changed; PATCH changes " + PATCHABLE + " (build a new "
                        + what + " for another concept or layer)");
            }
        }
        return json.treeToValue(body, Patch.class);
    }

    /**
     * POST /api/vectors.
     *
     * @param layer  one layer, 3..L (default 2L/3, at least 3)
     * @param layers instead of layer: one vector per layer of this list
     */
    public record VectorBuild(String name, String description, List<String> tags, String model, String conceptPrompt,
                              String contrastPrompt, Integer layer, List<Integer> layers) {
    }

    /** The additive baseline: v = mean residual(conceptPrompt) - mean residual(contrastPrompt, default ""). */
    public record Vector(String conceptPrompt, String contrastPrompt) {
    }

    /**
     * POST /api/steer: {@code operatorId}, {@code vectorId} (a saved vector) or {@code vector} (built for this
     * request). The generation fields (and the repetition controls,
     * as in /api/generate) apply to both the normal and the steered continuation.
     */
    public record Steer(String model, Long operatorId, Long vectorId, Vector vector, String prompt, Double strength, Integer layer,
                        Integer maxNewTokens, Double temperature, Integer topK, Double topP, Long seed,
                        Double repetitionPenalty, Integer noRepeatNgramSize) {
    }

    /** POST /api/steer/sweep: the generation fields apply to every cell. */
    public record Sweep(Long operatorId, String model, String prompt, List<Double> strengths, List<Integer> layers,
                        Integer maxNewTokens, Double temperature, Integer topK, Double topP, Long seed,
                        Double repetitionPenalty, Integer noRepeatNgramSize) {
    }

    /** Upper bounds of the repetition controls. */
    static final double MAX_REPETITION_PENALTY = 10;
    static final int MAX_NO_REPEAT_NGRAM = 32;


    /** A library listing's {@code limit}: 1..500, default 100. */
    static int limit(String limit) {
        Integer given = Forms.integer(limit, "limit");
        int n = given == null ? 100 : given;
        if (n < 1 || n > 500) {
            throw Refusal.invalidField("limit", "must be between 1 and 500, got " + n);
        }
        return n;
    }

    /** A steer request's field checks (400 invalid_FIELD), as the service's spec; at most {@code maxNewTokens}. */
    static SteeringService.SteerSpec steer(Steer req, int maxNewTokens) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        int sources = (req.operatorId() == null ? 0 : 1) + (req.vectorId() == null ? 0 : 1)
                + (req.vector() == null ? 0 : 1);
        if (sources != 1) {
            throw Refusal.invalidField("operatorId", "give one of operatorId, vectorId (a saved vector) or vector"
                    + " (not several, not none)");
        }
        if (req.vector() != null) {
            required(req.vector().conceptPrompt(), "vector.conceptPrompt");
        }
        required(req.prompt(), "prompt");
        double strength = strength(req.strength(), "strength");
        GenerationParams params = params(req.maxNewTokens(), 32, maxNewTokens,
                req.temperature(), req.topK(), req.topP(), req.seed(), req.repetitionPenalty(),
                req.noRepeatNgramSize());
        return new SteeringService.SteerSpec(req.model(), req.operatorId(), req.vectorId(),
                req.vector() == null ? null : req.vector().conceptPrompt(),
                req.vector() == null ? null : req.vector().contrastPrompt(), req.prompt(), strength, req.layer(),
                params);
    }

    /** A sweep request's field checks (400 invalid_FIELD: strengths, layers, cells), as the service's spec. */
    static SteeringService.SweepSpec sweep(Sweep req) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        required(req.operatorId(), "operatorId");
        required(req.prompt(), "prompt");
        List<Double> strengths = req.strengths();
        if (strengths != null) {
            for (Double s : strengths) {
                strength(s == null ? Double.NaN : s, "strengths");
            }
        }
        GenerationParams params = params(req.maxNewTokens(), 24, SteeringService.MAX_SWEEP_TOKENS,
                req.temperature(), req.topK(), req.topP(), req.seed(), req.repetitionPenalty(),
                req.noRepeatNgramSize());
        return new SteeringService.SweepSpec(req.operatorId(), req.model(), req.prompt(), strengths,
                req.layers(), params);
    }

    /**
     * A build request's shape (400 missing_body, invalid_conceptPrompt when there is none) as the service's request;
     * {@link OperatorService#plan} checks the rest against the library's and the model's limits.
     */
    static OperatorService.BuildRequest build(Build req) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        required(req.conceptPrompt(), "conceptPrompt");
        return new OperatorService.BuildRequest(req.model(), req.name(), req.description(), req.tags(),
                req.conceptPrompt(), req.layer(), req.form(), req.rank(), req.energy());
    }

    /**
     * Tags as a form or an import's query gives them (comma separated) as a list, null for none; the service checks
     * them with the name and description ({@link LibraryEntry}).
     */
    static List<String> tags(String tags) {
        return tags == null || tags.isBlank() ? null
                : java.util.Arrays.stream(tags.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    }

    static double strength(Double s, String field) {
        double v = s == null ? 1.0 : s;
        if (!(v >= -SteeringService.MAX_STRENGTH && v <= SteeringService.MAX_STRENGTH)) {
            throw Refusal.invalidField(field, "must be between " + -SteeringService.MAX_STRENGTH + " and "
                    + SteeringService.MAX_STRENGTH + ", got " + s);
        }
        return v;
    }

    static void required(Object value, String field) {
        if (value == null || value instanceof String str && str.isEmpty()) {
            throw Refusal.invalidField(field, "is required");
        }
    }

    /** Generation parameters, with the rules and defaults of /api/generate. */
    static GenerationParams params(Integer maxNewTokens, int dflt, int max, Double temperature, Integer topK,
                                   Double topP, Long seed, Double repetitionPenalty, Integer noRepeatNgramSize) {
        int maxNew = maxNewTokens == null ? dflt : maxNewTokens;
        if (maxNew < 1 || maxNew > max) {
            throw Refusal.invalidField("maxNewTokens", "must be between 1 and " + max + ", got " + maxNew);
        }
        double t = temperature == null ? 0 : temperature;
        if (!(t >= 0 && t <= 100)) {
            throw Refusal.invalidField("temperature", "must be between 0 and 100, got " + temperature);
        }
        int k = topK == null ? 0 : topK;
        if (k < 0) {
            throw Refusal.invalidField("topK", "must be >= 0 (0 = off), got " + k);
        }
        double p = topP == null ? 1 : topP;
        if (!(p > 0 && p <= 1)) {
            throw Refusal.invalidField("topP", "must be in (0, 1], got " + topP);
        }
        double penalty = repetitionPenalty == null ? 1 : repetitionPenalty;
        if (!(penalty > 0 && penalty <= MAX_REPETITION_PENALTY)) {
            throw Refusal.invalidField("repetitionPenalty", "must be in (0, " + (int) MAX_REPETITION_PENALTY
                    + "] (1 = off), got " + repetitionPenalty);
        }
        int ngram = noRepeatNgramSize == null ? 0 : noRepeatNgramSize;
        if (ngram < 0 || ngram > MAX_NO_REPEAT_NGRAM) {
            throw Refusal.invalidField("noRepeatNgramSize", "must be between 0 (off) and " + MAX_NO_REPEAT_NGRAM
                    + ", got " + ngram);
        }
        long s = seed != null ? seed : ThreadLocalRandom.current().nextLong(1L << 48);
        return new GenerationParams(maxNew, t, k, p, s, penalty, ngram);
    }
}
