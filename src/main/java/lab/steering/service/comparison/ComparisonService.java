package lab.steering.service.comparison;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import lab.steering.jacobian.Analysis;
import lab.steering.jacobian.Target;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.RunRecorder;
import lab.steering.service.analysis.AnalysisPlanner;
import lab.steering.service.analysis.JacobianService;
import lab.steering.service.jobs.JobKind;
import lab.steering.service.jobs.JobQueue;
import lab.steering.service.jobs.WorkLimiter;
import lab.steering.service.models.ModelRegistry;
import lab.steering.store.ComparisonEntry;
import lab.steering.store.ComparisonRecord;
import lab.steering.store.ComparisonStore;
import lab.steering.store.JobStore;

/**
 * The architecture comparison (the paper's rank comparison): the detached-Jacobian analysis of each prompt on each
 * model, reduced to what is compared side by side: stable ranks (combined and per token), the top singular values
 * (of the token-concatenated Jacobian and of the last token's) and their decoded singular vectors. One prompt runs
 * at once (through the {@link WorkLimiter}); a batch is a job of kind {@value #KIND} in the {@link JobQueue}, run by
 * any replica's workers ({@link ComparisonJobs}), its entries written to PostgreSQL as they come, so a comparison is
 * a stored, bookmarkable thing that every replica shows with its progress. A batch's state (status, progress,
 * stage, error) is its job's, copied to the comparison row by the database in the same transaction (V5).
 */
@ApplicationScoped
public class ComparisonService {


    /** The default batch: 100 short everyday phrases written for the project. */
    public static final String PHRASES = "/compare/phrases.txt";
    /** Most decoded singular vectors kept per spectrum. */
    public static final int MAX_VECTORS = Analysis.DECODE_MAX;
    /** The job kind of a batch. */
    public static final String KIND = "comparison";

    public static final int MAX_MODELS = 8;
    public static final int MAX_PROMPTS = 500;
    public static final int DEFAULT_VECTORS = 3;

    @Inject
    ModelRegistry registry;
    @Inject
    AnalysisPlanner planner;
    @Inject
    JacobianService jacobian;
    @Inject
    WorkLimiter limiter;
    @Inject
    JobQueue queue;
    @Inject
    ComparisonStore store;
    @Inject
    ObjectMapper json;

    /** A compared model as the comparison records it (kept with the comparison: the model may be unloaded later). */
    public record ModelInfo(String id, String architecture, int layers, int hiddenSize, int heads, int kvHeads,
                            int intermediateSize, long parameters) {
        public static ModelInfo of(LanguageModel m) {
            var c = m.config();
            return new ModelInfo(m.id(), c.modelType(), c.numLayers(), c.hiddenSize(), c.numHeads(), c.numKvHeads(),
                    c.intermediateSize(), c.parameterCount());
        }
    }

    /** What a comparison runs, as stored with it (the request after validation and defaults). */
    public record Settings(List<ModelInfo> models, List<String> prompts, String batch, String dtype, int topK,
                           int vectors) {
    }

    /**
     * A validated comparison: its settings and, per prompt and model, the analysis request (the output Jacobian
     * with the model output as the only swept "layer", which gives the combined spectrum's decoded vectors).
     */
    public record Plan(Settings settings, JacobianService.Request[][] requests) {
    }

    /** A spectrum's stable rank, top singular values and decoded singular vectors (v: null where not decoded). */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Spectrum(double stableRank, double[] singularValues, List<Analysis.Direction> u,
                           List<Analysis.Direction> v) {
    }

    /** One prompt on one model. */
    public record Entry(String model, int promptIndex, String method, List<Analysis.TokenInfo> tokens,
                        double[] perTokenStableRank, Spectrum combined, Spectrum lastToken,
                        Analysis.Prediction prediction, double detachedRelError, double ms) {
    }

    /** Distribution of a quantity over the prompts (quartiles by linear interpolation, numpy's default). */
    public record Stats(int count, double mean, double min, double q1, double median, double q3, double max) {
        public static Stats of(double[] values) {
            if (values.length == 0) {
                return new Stats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            }
            double[] v = values.clone();
            Arrays.sort(v);
            return new Stats(v.length, Arrays.stream(v).average().orElse(Double.NaN), v[0], quantile(v, 0.25),
                    quantile(v, 0.5), quantile(v, 0.75), v[v.length - 1]);
        }

        static double quantile(double[] sorted, double q) {
            double h = (sorted.length - 1) * q;
            int lo = (int) Math.floor(h);
            int hi = Math.min(sorted.length - 1, lo + 1);
            return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
        }
    }

    /**
     * One model over the prompts done so far: the distributions of the combined and the last token's stable rank, and
     * the mean top singular values of the combined Jacobian divided by its largest (the spectrum's shape).
     */
    public record ModelSummary(ModelInfo model, Stats combinedStableRank, Stats lastTokenStableRank,
                               double[] meanRelativeSingularValues) {
    }

    /** One prompt and its entry per model, in the comparison's model order (null where not done yet). */
    public record PromptRow(int index, String prompt, List<Entry> results) {
    }

    /** A comparison as GET /api/compare/{id} shows it. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record View(Long id, String status, double progress, String stage, OffsetDateTime createdAt,
                       OffsetDateTime finishedAt, String error, String batch, String dtype, int topK, int vectors,
                       int promptCount, int entries, List<ModelSummary> models, List<PromptRow> prompts) {
    }

    /** A comparison in the list (no entries). */
    public record Listed(long id, String status, double progress, String stage, OffsetDateTime createdAt,
                         OffsetDateTime finishedAt, List<String> models, int promptCount, String batch) {
    }

    /**
     * A batch's job request: the stored comparison it fills and, per model in the comparison's order, the validated
     * analysis of each prompt (the method "auto" chose and the token ids), so that a worker on any replica runs
     * exactly what was validated.
     */
    public record Payload(long comparison, List<ModelRuns> models) {
        static Payload of(long comparison, Plan plan) {
            List<ModelRuns> out = new ArrayList<>();
            JacobianService.Request[][] r = plan.requests();
            for (int m = 0; m < plan.settings().models().size(); m++) {
                Analysis.Options o = r[0][m].options();
                List<String> methods = new ArrayList<>();
                List<long[]> ids = new ArrayList<>();
                for (JacobianService.Request[] row : r) {
                    methods.add(row[m].options().method().apiName());
                    ids.add(row[m].ids());
                }
                out.add(new ModelRuns(r[0][m].model().id(), o.dtype() == DataType.FLOAT64 ? "float64" : "float32",
                        o.topK(), o.layers(), o.mode().name(), o.component().name(), o.bothSigns(), methods, ids));
            }
            return new Payload(comparison, out);
        }
    }

    /** One model's analyses in a batch: the shared options, then per prompt its method and token ids. */
    public record ModelRuns(String model, String dtype, int topK, int[] layers, String mode, String component,
                            boolean bothSigns, List<String> methods, List<long[]> ids) {
    }

    private volatile List<String> phrases;

    /** The default batch. */
    public List<String> defaultPhrases() {
        List<String> p = phrases;
        if (p == null) {
            try (InputStream in = ComparisonService.class.getResourceAsStream(PHRASES)) {
                if (in == null) {
                    throw new IllegalStateException(PHRASES + " is missing from the application");
                }
                p = new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().map(String::strip)
                        .filter(s -> !s.isEmpty() && !s.startsWith("#")).toList();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            phrases = p;
        }
        return p;
    }

    // ---------------------------------------------------------------- running

    /**
     * One prompt, at once, through the limiter (429 when full); stored as a finished comparison when the database is
     * up (id null when it is down: the answer is still given).
     */
    public View runNow(Plan plan) {
        Settings s = plan.settings();
        List<Entry> entries = limiter.run(() -> {
            List<Entry> out = new ArrayList<>();
            for (int m = 0; m < s.models().size(); m++) {
                out.add(analyse(plan.requests()[0][m], 0, s.vectors(), Analysis.Progress.NONE));
            }
            return out;
        });
        OffsetDateTime now = OffsetDateTime.now();
        OffsetDateTime[] times = {now, now}; // as stored, so that this answer and GET /api/compare/{id} agree
        Long id = RunRecorder.unlessDatabaseDown("comparison", () -> {
            long cid = store.create(ids(s), s.prompts().size(), write(s));
            for (Entry e : entries) {
                store.add(cid, e.promptIndex(), e.model(), e.combined().stableRank(), write(e));
            }
            ComparisonRecord done = store.finish(cid, "done", null);
            if (done != null) {
                times[0] = done.createdAt;
                times[1] = done.finishedAt;
            }
            return cid;
        });
        return view(id, "done", 1, "done", times[0], times[1], null, s, entries);
    }

    /**
     * A batch as a job: the comparison (queued) and its job stored in one transaction, then run by whichever
     * replica's worker claims it; {@link Busy} when the job queue is full (nothing is then stored).
     */
    public View submit(Plan plan) {
        return submit(plan, null);
    }

    /**
     * As above, with the client's Idempotency-Key (null: none): a retry with the same key and settings gets the
     * first request's comparison instead of a second one.
     */
    public View submit(Plan plan, String idempotencyKey) {
        Settings s = plan.settings();
        String settings = write(s);
        JobQueue.Key key = queue.key(idempotencyKey, KIND, settings);
        java.util.Optional<View> first = queue.earlierRow(KIND, key, "comparison batch",
                job -> queue.request(job, Payload.class).comparison(), this::get);
        if (first.isPresent()) {
            return first.get();
        }
        long id = store.createBatch(ids(s), s.prompts().size(), settings,
                cid -> queue.submit(KIND, null, write(Payload.of(cid, plan)), "comparison batch", key).id());
        queue.wake(); // committed now: this replica's idle workers may claim it at once
        return get(id).orElseThrow();
    }

    /**
     * Requests cancellation (from any replica): a queued comparison is cancelled at once; a running one stops at its
     * next progress point, keeping the entries done so far; a finished one is left as it is. Empty when there is no
     * such id.
     */
    public java.util.Optional<View> cancel(long id) {
        java.util.Optional<ComparisonRecord> r = store.record(id);
        if (r.isEmpty()) {
            return java.util.Optional.empty();
        }
        ComparisonRecord c = r.get();
        if (c.jobId != null && (c.status.equals("queued") || c.status.equals("running"))) {
            queue.cancel(c.jobId.toString());
        }
        return get(id);
    }

    /**
     * The job of a batch, on a worker (any replica): analyses every (prompt, model) pair not stored yet, in prompt
     * order, storing each entry as it is done (fenced by the job's owner and attempt). A retried job (its first
     * worker was lost) skips the entries its earlier attempts stored, so each pair has one entry. Progress and
     * cancellation go through {@code progress}; the models must be loaded on this replica.
     */
    JobKind.Outcome runJob(JobStore.Job job, JobKind.Progress progress) {
        Payload p = queue.request(job, Payload.class);
        long id = p.comparison();
        ComparisonRecord rec = store.record(id).orElseThrow(
                () -> new Refusal(Refusal.Kind.NOT_FOUND, "unknown_comparison",
                "comparison " + id + " was deleted before its job ran"));
        Settings s = read(rec.request, Settings.class);
        int models = p.models().size();
        int prompts = s.prompts().size();
        List<LanguageModel> loaded = new ArrayList<>();
        for (ModelRuns m : p.models()) {
            loaded.add(queue.model(job, m.model()));
        }
        Set<String> stored = store.stored(id);
        double total = (double) models * prompts;
        int done = 0;
        for (int i = 0; i < prompts; i++) {
            for (int m = 0; m < models; m++) {
                if (stored.contains(i + "/" + p.models().get(m).model())) {
                    done++;
                }
            }
        }
        int skipped = done;
        for (int i = 0; i < prompts; i++) {
            for (int m = 0; m < models; m++) {
                ModelRuns runs = p.models().get(m);
                if (stored.contains(i + "/" + runs.model())) {
                    continue;
                }
                String stage = "prompt " + (i + 1) + "/" + prompts + " on " + runs.model();
                final double base = done;
                progress.update(stage, base / total);
                Entry e = analyse(request(loaded.get(m), runs, s.prompts().get(i), i), i, s.vectors(),
                        (st, f) -> progress.update(stage + " (" + st + ")", (base + f) / total));
                if (!store.add(job.id(), job.owner(), job.attempts(), id, i, e.model(), e.combined().stableRank(),
                        write(e))) {
                    throw new JobStore.LeaseLost(job.id());
                }
                done++;
            }
        }
        progress.update("finishing", done / total);
        Map<String, Object> result = Map.of("comparison", id, "entries", done, "skipped", skipped);
        return () -> result;
    }

    /** The validated analysis of prompt {@code i} on a model, rebuilt from the job's request. */
    private JacobianService.Request request(LanguageModel model, ModelRuns r, String prompt, int i) {
        Analysis.Method method = null;
        for (Analysis.Method m : Analysis.Method.values()) {
            if (m.apiName().equals(r.methods().get(i))) {
                method = m;
            }
        }
        if (method == null) {
            throw new IllegalStateException("comparison job: unknown method '" + r.methods().get(i) + "'");
        }
        Analysis.Options o = jacobian.options(method, r.dtype().equals("float64") ? DataType.FLOAT64
                        : DataType.FLOAT32, r.topK(), r.layers(), Target.Mode.valueOf(r.mode()),
                Target.Component.valueOf(r.component()), r.bothSigns()).withoutOrdinary();
        return new JacobianService.Request(model, prompt, r.ids().get(i), o,
                Target.output(model.config().numLayers()));
    }

    /** The analysis of one prompt on one model, reduced to the compared quantities. */
    Entry analyse(JacobianService.Request r, int promptIndex, int vectors, Analysis.Progress progress) {
        long t0 = System.nanoTime();
        Analysis.Result a = jacobian.run(r, progress);
        Analysis.Layer output = a.layers().get(a.layers().size() - 1); // the model output: the combined spectrum
        Analysis.TokenSpectrum last = a.perToken().get(a.perToken().size() - 1);
        Spectrum combined = new Spectrum(a.stableRank().combined(), output.singularValues(), first(output.u(), vectors),
                null);
        Spectrum lastToken = new Spectrum(last.stableRank(), last.singularValues(), first(last.u(), vectors),
                first(last.v(), vectors));
        return new Entry(a.model(), promptIndex, a.method(), a.tokens(), a.stableRank().perToken(), combined,
                lastToken, a.prediction(), a.reconstruction().detachedRelError(), (System.nanoTime() - t0) / 1e6);
    }

    private static <T> List<T> first(List<T> list, int n) {
        return list == null ? null : List.copyOf(list.subList(0, Math.min(n, list.size())));
    }

    // ---------------------------------------------------------------- reading

    public java.util.Optional<View> get(long id) {
        return store.find(id).map(st -> {
            ComparisonRecord r = st.record();
            Settings s = read(r.request, Settings.class);
            List<Entry> entries = new ArrayList<>();
            for (ComparisonEntry e : st.entries()) {
                entries.add(read(e.result, Entry.class));
            }
            return view(r.id, r.status, r.progress, r.stage, r.createdAt, r.finishedAt, r.error, s, entries);
        });
    }

    public List<Listed> list(int limit) {
        return store.list(limit).stream().map(r -> {
            Settings s = read(r.request, Settings.class);
            return new Listed(r.id, r.status, r.progress, r.stage, r.createdAt, r.finishedAt, List.of(r.models),
                    r.promptCount, s.batch());
        }).toList();
    }

    static View view(Long id, String status, double progress, String stage, OffsetDateTime created,
                     OffsetDateTime finished, String error, Settings s, List<Entry> entries) {
        int nm = s.models().size();
        Map<String, Integer> column = new HashMap<>();
        for (int m = 0; m < nm; m++) {
            column.put(s.models().get(m).id(), m);
        }
        Entry[][] grid = new Entry[s.prompts().size()][nm];
        for (Entry e : entries) {
            Integer m = column.get(e.model());
            if (m != null && e.promptIndex() < grid.length) {
                grid[e.promptIndex()][m] = e;
            }
        }
        List<ModelSummary> summaries = new ArrayList<>();
        for (int m = 0; m < nm; m++) {
            List<Entry> mine = new ArrayList<>();
            for (Entry[] row : grid) {
                if (row[m] != null) {
                    mine.add(row[m]);
                }
            }
            double[] combined = mine.stream().mapToDouble(e -> e.combined().stableRank()).toArray();
            double[] lastRanks = mine.stream().mapToDouble(e -> e.lastToken().stableRank()).toArray();
            int k = mine.stream().mapToInt(e -> e.combined().singularValues().length).min().orElse(0);
            double[] shape = new double[k];
            for (Entry e : mine) {
                double[] sv = e.combined().singularValues();
                for (int i = 0; i < k; i++) {
                    shape[i] += sv[0] > 0 ? sv[i] / sv[0] / mine.size() : 0;
                }
            }
            summaries.add(new ModelSummary(s.models().get(m), Stats.of(combined), Stats.of(lastRanks), shape));
        }
        List<PromptRow> rows = new ArrayList<>();
        for (int p = 0; p < grid.length; p++) {
            rows.add(new PromptRow(p, s.prompts().get(p), Arrays.asList(grid[p])));
        }
        return new View(id, status, progress, stage, created, finished, error, s.batch(), s.dtype(), s.topK(),
                s.vectors(), s.prompts().size(), entries.size(), summaries, rows);
    }

    private static String[] ids(Settings s) {
        return s.models().stream().map(ModelInfo::id).toArray(String[]::new);
    }

    private String write(Object o) {
        try {
            return json.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private <T> T read(String text, Class<T> type) {
        try {
            return json.readValue(text, type);
        } catch (IOException e) {
            throw new IllegalStateException("stored comparison JSON cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * A comparison request checked against the models and this service's limits (400 invalid_FIELD naming the field,
     * 404 unknown_model): each prompt on each model planned as the analysis it runs (spectra only).
     */
    public Plan plan(CompareRequest req) {
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
            prompts = defaultPhrases();
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
        if (vectors < 1 || vectors > MAX_VECTORS) {
            throw Refusal.invalidField("vectors", "must be between 1 and " + MAX_VECTORS
                    + ", got " + vectors);
        }
        JacobianService.Request[][] requests = new JacobianService.Request[prompts.size()][models.size()];
        for (int m = 0; m < models.size(); m++) {
            LanguageModel model = models.get(m);
            // the model output as the only swept layer: the combined spectrum with its decoded vectors, at no cost
            var layers = JsonNodeFactory.instance.arrayNode().add(model.config().numLayers());
            for (int p = 0; p < prompts.size(); p++) {
                AnalysisPlanner.Spec spec = new AnalysisPlanner.Spec(model.id(), prompts.get(p), req.dtype(),
                        req.topK(), "auto", layers, null, null, false);
                try {
                    // the comparison shows spectra only: no ordinary Jacobian (3/4 of an analysis' cost), and the
                    // method and memory checks count without it
                    requests[p][m] = planner.plan(spec, false, false);
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
        List<ModelInfo> infos = models.stream().map(ModelInfo::of).toList();
        return new Plan(new Settings(infos, List.copyOf(prompts), batch,
                first.dtype() == ai.djl.ndarray.types.DataType.FLOAT64 ? "float64" : "float32", first.topK(), vectors),
                requests);
    }
}
