package lab.steering.service.evaluation;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import lab.steering.eval.InvalidSetting;
import lab.steering.eval.MiniLmEmbedder;
import lab.steering.eval.OutputScores;
import lab.steering.eval.SteeringBenchmark;
import lab.steering.eval.SuiteCheck;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.jobs.JobKind;
import lab.steering.service.jobs.JobQueue;
import lab.steering.service.jobs.WorkLimiter;
import lab.steering.service.models.Decoders;
import lab.steering.service.models.ModelRegistry;
import lab.steering.steer.EvalSuite;
import lab.steering.steer.TextScores;
import lab.steering.store.EvalSuiteRecord;
import lab.steering.store.EvaluationRecord;
import lab.steering.store.EvaluationStore;
import lab.steering.store.JobStore;

/**
 * The steering benchmark in the app (issue 14): suites stored in PostgreSQL, and evaluations run as jobs of kind
 * {@value #KIND} by any replica's workers ({@link EvaluationJobs}), each the {@link SteeringBenchmark} engine on one
 * model with the {@link MiniLmEmbedder}. An evaluation stores its validated request (the suite itself included) when
 * it is submitted, and its whole result when its job finishes; its state is its job's (V7's trigger).
 */
@ApplicationScoped
public class EvaluationService {

    /** The job kind of an evaluation. */
    public static final String KIND = "evaluation";

    public static final int MAX_STRENGTHS = 8;
    public static final int MAX_LAYERS = 4;
    public static final int MAX_NEW_TOKENS = 128;
    /** Most continuations one run may generate. */
    public static final long MAX_OUTPUTS = 10_000;
    public static final List<Double> DEFAULT_STRENGTHS = List.of(1.0, 2.0, 4.0);

    @Inject
    ModelRegistry registry;
    @Inject
    JobQueue queue;
    @Inject
    EvaluationStore store;
    @Inject
    ObjectMapper json;
    @Inject
    WorkLimiter limiter;
    @Inject
    Decoders decoders;
    @Inject
    lab.steering.config.LabConfig config;

    /** A validated evaluation: the model, the suite (already cut to the requested size) and the settings. */
    public record Plan(String model, Long suiteId, EvalSuite suite, SteeringBenchmark.Settings settings) {
    }

    /** What a job reads back: the evaluation's id (its request is in the evaluation row). */
    public record Payload(long evaluation) {
    }

    /** A stored suite in a list. */
    public record SuiteInfo(long id, String name, int concepts, int prompts, OffsetDateTime createdAt) {
        static SuiteInfo of(EvalSuiteRecord r) {
            return new SuiteInfo(r.id, r.name, r.conceptCount, r.promptCount, r.createdAt);
        }
    }

    /** One output as the API shows it: its concept and prompt by index and text, and whether it is the chosen setting. */
    public record Row(int concept, String conceptName, int prompt, String promptText, String split, Double strength,
                      Integer layer, boolean chosen, String text, int tokens, OutputScores scores) {
    }

    /** A method: its chosen setting, the means and intervals on the report prompts, and all of its outputs. */
    public record MethodView(String method, Double strength, Integer layer, int outputs,
                             Map<String, TextScores.Interval> scores, List<Row> rows) {
    }

    /** An evaluation as GET /api/evaluations/{id} shows it (the result's fields are null until it is done). */
    public record View(long id, String status, double progress, String stage, OffsetDateTime createdAt,
                       OffsetDateTime finishedAt, String error, String model, Long suiteId, String suite, int concepts,
                       int prompts, SteeringBenchmark.Settings settings, String embedder, List<Integer> layers,
                       List<Integer> selectPrompts, List<Integer> reportPrompts, List<MethodView> methods,
                       List<SteeringBenchmark.GridPoint> grid, Double seconds) {

        public boolean finished() {
            return !status.equals("queued") && !status.equals("running");
        }
    }

    /** The request as stored with the evaluation. */
    public record Stored(String model, Long suiteId, EvalSuite suite, SteeringBenchmark.Settings settings) {
    }

    // ---------------------------------------------------------------- suites

    /** Stores a suite (checked first: an {@link lab.steering.eval.InvalidSetting} names the bad field). */
    public SuiteInfo createSuite(EvalSuite suite) {
        SuiteCheck.check(suite);
        return SuiteInfo.of(store.createSuite(suite.name(), suite.concepts().size(), suite.prompts().size(),
                write(suite)));
    }

    public Optional<EvalSuite> suite(long id) {
        return store.suite(id).map(r -> read(r.suite, EvalSuite.class));
    }

    public List<SuiteInfo> suites(int limit) {
        return store.suites(limit).stream().map(SuiteInfo::of).toList();
    }

    // ---------------------------------------------------------------- evaluations

    /** Stores the evaluation and queues its job in one transaction; {@link Busy} when the queue is full. */
    public View submit(Plan plan) {
        return submit(plan, null);
    }

    /**
     * As above, with the client's Idempotency-Key (null: none): a retry with the same key and plan gets the first
     * request's evaluation instead of a second one.
     */
    public View submit(Plan plan, String idempotencyKey) {
        String stored = write(new Stored(plan.model(), plan.suiteId(), plan.suite(), plan.settings()));
        JobQueue.Key key = queue.key(idempotencyKey, KIND, plan.model() + "\n" + stored);
        Optional<View> first = queue.earlierRow(KIND, key, "evaluation",
                job -> queue.request(job, Payload.class).evaluation(), this::get);
        if (first.isPresent()) {
            return first.get();
        }
        long id = store.create(plan.model(), plan.suiteId(), plan.suite().name(), stored,
                eid -> queue.submit(KIND, plan.model(), write(new Payload(eid)), "evaluation", key).id());
        queue.wake();
        return get(id).orElseThrow();
    }

    public Optional<View> get(long id) {
        return store.find(id).map(this::view);
    }

    /** The evaluation's stored request (its settings and suite). */
    public Optional<Stored> stored(long id) {
        return store.find(id).map(e -> read(e.request, Stored.class));
    }

    public List<EvaluationStore.Listed> list(int limit) {
        return store.list(limit);
    }

    /** Requests cancellation (any replica); a finished evaluation is left as it is. Empty when there is no such id. */
    public Optional<View> cancel(long id) {
        Optional<EvaluationRecord> r = store.find(id);
        if (r.isEmpty()) {
            return Optional.empty();
        }
        EvaluationRecord e = r.get();
        if (e.jobId != null && (e.status.equals("queued") || e.status.equals("running"))) {
            queue.cancel(e.jobId.toString());
        }
        return get(id);
    }

    /** The job, on a worker of any replica that has the model: the whole benchmark, then the result stored. */
    JobKind.Outcome runJob(JobStore.Job job, JobKind.Progress progress) {
        Payload p = queue.request(job, Payload.class);
        EvaluationRecord rec = store.find(p.evaluation()).orElseThrow(
                () -> new Refusal(Refusal.Kind.NOT_FOUND, "unknown_evaluation",
                "evaluation " + p.evaluation() + " was deleted before its job ran"));
        Stored s = read(rec.request, Stored.class);
        LanguageModel model = queue.model(job, s.model());
        // each group of continuations goes to the model's batched decoder at once; progress points while it decodes
        Object one = new Object();
        String[] stage = {"starting"};
        double[] fraction = {0};
        JobKind.Progress points = (st, f) -> {
            synchronized (one) { // from the benchmark's scoring threads too: one progress write at a time
                stage[0] = st;
                fraction[0] = f;
                limiter.checkpoint(); // a held or interrupted worker stops here
                progress.update(st, f);
            }
        };
        SteeringBenchmark.Result r = SteeringBenchmark.run(model, s.suite(), s.settings(), MiniLmEmbedder.shared(),
                SteeringBenchmark.decoder(model, ds -> decoders.runQueued(model, () -> {
                    synchronized (one) {
                        points.update(stage[0], fraction[0]);
                    }
                }, ds)), Math.max(1, Runtime.getRuntime().availableProcessors()), points::update);
        String text = write(r);
        Map<String, Object> summary = Map.of("evaluation", p.evaluation(), "outputs", r.outputs().size());
        return () -> {
            if (!store.result(p.evaluation(), text)) {
                throw new Refusal(Refusal.Kind.NOT_FOUND, "unknown_evaluation",
                        "evaluation " + p.evaluation() + " was deleted");
            }
            return summary;
        };
    }

    View view(EvaluationRecord e) {
        Stored s = read(e.request, Stored.class);
        SteeringBenchmark.Result r = e.result == null ? null : read(e.result, SteeringBenchmark.Result.class);
        List<MethodView> methods = null;
        if (r != null) {
            methods = new ArrayList<>();
            for (SteeringBenchmark.MethodSummary m : r.methods()) {
                List<Row> rows = new ArrayList<>();
                for (SteeringBenchmark.Output o : r.outputs()) {
                    if (!o.method().equals(m.method())) {
                        continue;
                    }
                    boolean chosen = java.util.Objects.equals(o.strength(), m.strength())
                            && java.util.Objects.equals(o.layer(), m.layer());
                    rows.add(new Row(o.concept(), r.suite().concepts().get(o.concept()).name(), o.prompt(),
                            r.suite().prompts().get(o.prompt()), o.split(), o.strength(), o.layer(), chosen, o.text(),
                            o.tokens(), o.scores()));
                }
                methods.add(new MethodView(m.method(), m.strength(), m.layer(), m.outputs(), m.scores(), rows));
            }
        }
        return new View(e.id, e.status, e.progress, e.stage, e.createdAt, e.finishedAt, e.error, e.modelId, e.suiteId,
                e.suiteName, s.suite().concepts().size(), s.suite().prompts().size(), s.settings(),
                r == null ? null : r.embedder(), r == null ? null : r.layers(), r == null ? null : r.selectPrompts(),
                r == null ? null : r.reportPrompts(), methods, r == null ? null : r.grid(),
                r == null ? null : r.seconds());
    }

    private String write(Object o) {
        try {
            return json.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("not serialisable: " + e.getMessage(), e);
        }
    }

    private <T> T read(String text, Class<T> type) {
        try {
            return json.readValue(text, type);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("stored " + type.getSimpleName() + " is not readable: "
                    + e.getOriginalMessage(), e);
        }
    }

    /**
     * An evaluation request checked against the model and this service's limits (400 invalid_FIELD naming the field,
     * 404 unknown_model): the suite (inline, stored or the default), methods, strengths, layers and the run's size.
     */
    public Plan plan(EvaluationRequest req) {
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
            suite = checked(suite, "suite.");
        } else if (req.suiteId() != null) {
            suiteId = req.suiteId();
            long sid = suiteId;
            suite = suite(sid).orElseThrow(() -> Refusal.invalidField("suiteId", "suite " + sid
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
        return new Plan(model.id(), suiteId, suite, settings);
    }

    /** A suite as JSON (POST /api/suites, the page's suite editor), checked (400 invalid_FIELD naming its field). */
    public EvalSuite parseSuite(JsonNode body) {
        if (body == null || !body.isObject()) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body",
                    "a suite object {name, concepts, prompts} is required");
        }
        EvalSuite s;
        try {
            s = json.treeToValue(body, EvalSuite.class);
        } catch (JsonProcessingException e) {
            throw new Refusal(Refusal.Kind.INVALID, "invalid_suite", "not a suite: " + e.getOriginalMessage());
        }
        return checked(s, "");
    }

    /** The suite checked, a problem named as {@code prefix} + its field. */
    static EvalSuite checked(EvalSuite s, String prefix) {
        try {
            return SuiteCheck.check(s);
        } catch (InvalidSetting e) {
            String root = prefix.isEmpty() ? e.field().replaceAll("[\\[.].*", "") : prefix.replaceAll("\\.$", "");
            throw new Refusal(Refusal.Kind.INVALID, "invalid_" + root, prefix + e.getMessage()).detail("field",
                    prefix + e.field());
        }
    }
}
