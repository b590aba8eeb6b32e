package lab.steering.service.steering;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import lab.steering.generate.GeneratedToken;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.RunRecorder;
import lab.steering.service.Texts;
import lab.steering.service.jobs.HeavyWork;
import lab.steering.service.jobs.JobKind;
import lab.steering.service.jobs.JobQueue;
import lab.steering.service.models.Decoders;
import lab.steering.service.models.ModelFingerprints;
import lab.steering.service.models.ModelRegistry;
import lab.steering.steer.ControlVectorInjector;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.Steerer;
import lab.steering.steer.SteeringOperator;
import lab.steering.steer.SteeringVector;
import lab.steering.steer.VectorInjector;
import lab.steering.store.JobStore;
import lab.steering.store.OperatorLibrary;
import lab.steering.store.OperatorRecord;
import lab.steering.store.SteeringRun;

/**
 * Steering a prompt with an operator of the library ({@link OperatorService}) or a vector ({@link VectorService}):
 * unsteered and steered side by side with per-token diagnostics, recorded as a run ({@link RunRecorder}), and sweeps
 * of strengths and layers (as jobs). Not transactional itself: computations run outside transactions, and only the
 * library's short calls touch the database.
 */
@ApplicationScoped
public class SteeringService {


    /** Documented range of the strength lambda: negative values push away from the concept. */
    public static final double MAX_STRENGTH = 10;
    /** A sweep's grid: at most this many strengths, cells (strengths x layers) and new tokens per cell. */
    public static final int MAX_SWEEP_STRENGTHS = 16;
    public static final int MAX_SWEEP_CELLS = 64;
    public static final int MAX_SWEEP_TOKENS = 256;
    /** Raised and lowered tokens reported per generated token. */
    public static final int TOP_SHIFTS = 5;

    @Inject
    ModelRegistry registry;
    @Inject
    ModelFingerprints fingerprints;
    @Inject
    OperatorLibrary library;
    @Inject
    HeavyWork heavy;
    @Inject
    Decoders decoders;
    @Inject
    lab.steering.config.LabConfig config;
    @Inject
    JobQueue jobs;
    @Inject
    ObjectMapper json;
    @Inject
    VectorService vectors;
    @Inject
    OperatorService operators;

    public static final String SWEEP_KIND = "sweep";

    // ---- steer ---------------------------------------------------------------------------------------------------

    /**
     * A steering request whose fields the caller checked for range; model, prompt and layer are checked here.
     * Exactly one of {@code operatorId}, {@code vectorId} (a saved vector) and {@code vectorConcept} is set.
     */
    public record SteerSpec(String model, Long operatorId, Long vectorId, String vectorConcept, String vectorContrast,
                            String prompt, double strength, Integer layer, GenerationParams params) {
    }

    /** One generated token. */
    public record TokenOut(long id, String text, double logprob) {
    }

    /**
     * A continuation.
     *
     * @param perplexity   the unsteered model's perplexity of these tokens after the prompt
     * @param conceptScore mean over steps of log P(next token is a concept token) under the model that generated it
     */
    public record Continuation(String completion, List<TokenOut> tokens, String finishReason, double perplexity,
                               Double conceptScore) {
    }

    /**
     * Per generated token of the steered continuation, and the cost of steering.
     *
     * @param steeredMsPerToken   mean time of one steered decoding forward
     * @param unsteeredMsPerToken mean time of one unsteered forward on the same prefix (same loop)
     * @param overhead            their ratio
     * @param vectorNorm          ||v|| for vector steering
     */
    public record Diagnostics(List<SteeredRun.Step> steps, double steeredMsPerToken, double unsteeredMsPerToken,
                              double overhead, Double vectorNorm) {
    }

    public record SteerResult(Long runId, String model, String fingerprint, String kind, Long operatorId,
                              Long vectorId, String conceptPrompt, int layer, double strength, long seed, Continuation normal,
                              Continuation steered, Diagnostics diagnostics) {
    }

    public SteerResult steer(SteerSpec s) {
        return steer(s, null);
    }

    /**
     * As {@link #steer(SteerSpec)}, calling {@code onStep} (when not null) after each generated token (for
     * streaming). Both continuations are decodings of the model's batched steps ({@link Decoders}), which take a token
     * of each per step: token k of the unsteered one ({@code steered} false), then token k of the steered one, then
     * token k + 1 of each, and so on; the results are those of two separate, unbatched runs.
     */
    public SteerResult steer(SteerSpec s, java.util.function.BiConsumer<Boolean, SteeredRun.Step> onStep) {
        LanguageModel model;
        Function<ai.djl.ndarray.NDManager, Steerer> steering;
        long[] concept;
        String conceptPrompt;
        int layer;
        Double vectorNorm = null;
        OperatorRecord record = null;
        lab.steering.store.VectorRecord saved = null;
        if (s.operatorId() != null) {
            OperatorService.Loaded loaded = operators.load(s.operatorId());
            record = loaded.record();
            LanguageModel mdl = operators.modelFor(record, s.model());
            model = mdl;
            layer = checkLayer(mdl, s.layer(), record.layer);
            int at = layer;
            if (at != record.layer) {
                operators.checkDeviceMemory(mdl, loaded.operator().tokens(), "rebuilding the operator at layer " + at);
            }
            SteeringOperator op = at == record.layer ? loaded.operator()
                    : heavy.run("operator build", () -> OperatorBuilder.atLayer(mdl, loaded.operator(), at));
            concept = op.conceptIds();
            conceptPrompt = record.conceptPrompt;
            steering = m -> new Injector(op, s.strength(), m, mdl.dataType());
        } else if (s.vectorId() != null) {
            VectorService.Loaded v = vectors.load(s.vectorId());
            saved = v.record();
            LanguageModel mdl = vectors.modelFor(saved, s.model());
            model = mdl;
            int[] own = v.vector().layers();
            if (s.layer() != null && Arrays.stream(own).noneMatch(l -> l == s.layer())) {
                throw Refusal.invalidField("layer", "vector " + saved.id + " has layers "
                        + Arrays.toString(own) + ", got " + s.layer() + " (leave it out to steer at all of them)");
            }
            layer = s.layer() != null ? s.layer() : own[0];
            List<SteeringVector> vs = (s.layer() != null ? new VectorService.Loaded(saved,
                    v.vector().only(s.layer()), v.conceptIds(), v.contrastIds()) : v).steeringVectors();
            vectorNorm = vs.get(0).norm();
            concept = v.conceptIds();
            conceptPrompt = saved.conceptPrompt;
            steering = m -> new ControlVectorInjector(vs, s.strength(), m, mdl.dataType());
        } else {
            LanguageModel mdl = resolve(s.model());
            model = mdl;
            layer = checkLayer(mdl, s.layer(), OperatorBuilder.defaultLayer(mdl.config().numLayers()));
            concept = Texts.tokens(model, s.vectorConcept(), "vector.conceptPrompt");
            if (concept.length == 0 || concept.length > OperatorService.MAX_CONCEPT_TOKENS) {
                throw new Refusal(Refusal.Kind.INVALID, "invalid_vector.conceptPrompt",
                        "vector.conceptPrompt: encodes to "
                        + concept.length + " tokens, expected 1.." + OperatorService.MAX_CONCEPT_TOKENS);
            }
            long[] contrast = Texts.tokens(model, s.vectorContrast() == null ? "" : s.vectorContrast(),
                    "vector.contrastPrompt");
            if (contrast.length > OperatorService.MAX_CONCEPT_TOKENS) {
                throw new Refusal(Refusal.Kind.INVALID, "invalid_vector.contrastPrompt",
                        "vector.contrastPrompt: encodes to "
                        + contrast.length + " tokens, at most " + OperatorService.MAX_CONCEPT_TOKENS);
            }
            SteeringVector v = SteeringVector.build(model, concept, contrast, layer);
            vectorNorm = v.norm();
            conceptPrompt = s.vectorConcept();
            steering = m -> new VectorInjector(v, s.strength(), m, mdl.dataType());
        }
        long[] prompt = promptIds(model, s.prompt(), "prompt");
        SteeredRun.Decoding[] both = SteeredRun.pairOf(model, prompt, s.params(), null, 0, steering, TOP_SHIFTS,
                concept, onStep == null ? null : (side, st) -> onStep.accept(side == 1, st));
        decoders.run(model, both); // rows of the model's batched steps: the results of two unbatched runs
        SteeredRun.Result normal = both[0].result();
        SteeredRun.Result steered = both[1].result();
        Diagnostics diag = new Diagnostics(steered.steps(), steered.msPerToken(), steered.referenceMsPerToken(),
                steered.referenceMsPerToken() > 0 ? steered.msPerToken() / steered.referenceMsPerToken() : 0,
                vectorNorm);
        String kind = record != null ? "operator" : "vector";
        Long vectorId = saved == null ? null : saved.id;
        Continuation n = continuation(normal);
        Continuation st = continuation(steered);
        Map<String, Object> request = new LinkedHashMap<>();
        request.put("model", model.id());
        if (record != null) {
            request.put("operatorId", record.id);
        } else if (saved != null) {
            request.put("vectorId", saved.id);
        } else {
            request.put("vector", Map.of("conceptPrompt", s.vectorConcept(), "contrastPrompt",
                    s.vectorContrast() == null ? "" : s.vectorContrast()));
        }
        request.put("prompt", s.prompt());
        request.put("strength", s.strength());
        request.put("layer", layer);
        request.put("params", s.params());
        SteeringRun run = new SteeringRun();
        run.modelId = model.id();
        run.operatorId = record != null ? record.id : null;
        run.vectorId = vectorId;
        run.kind = kind;
        run.request = write(request);
        run.normal = write(n);
        run.steered = write(st);
        run.diagnostics = write(diag);
        Long runId = RunRecorder.unlessDatabaseDown("steering run", () -> library.saveRun(run));
        return new SteerResult(runId, model.id(), fingerprints.of(model), kind, run.operatorId, vectorId, conceptPrompt,
                layer,
                s.strength(), s.params().seed(), n, st, diag);
    }

    private static Continuation continuation(SteeredRun.Result r) {
        List<TokenOut> tokens = new ArrayList<>();
        for (GeneratedToken t : r.generation().tokens()) {
            tokens.add(new TokenOut(t.id(), t.text(), t.logprob()));
        }
        return new Continuation(r.generation().completion(), tokens, r.generation().finishReason().name(),
                r.perplexity(), r.conceptScore());
    }

    // ---- sweep ---------------------------------------------------------------------------------------------------

    public record SweepSpec(long operatorId, String model, String prompt, List<Double> strengths,
                            List<Integer> layers, GenerationParams params) {
    }

    /** The grid's size (400 invalid_strengths, invalid_layers): 1..16 strengths, distinct layers, 64 cells. */
    static void checkGrid(List<Double> strengths, List<Integer> layers) {
        if (strengths == null || strengths.isEmpty() || strengths.size() > MAX_SWEEP_STRENGTHS) {
            throw Refusal.invalidField("strengths", "must list 1.." + MAX_SWEEP_STRENGTHS + " values");
        }
        if (layers != null) {
            if (layers.contains(null) || new HashSet<>(layers).size() != layers.size()) {
                throw Refusal.invalidField("layers", "must be distinct layer numbers");
            }
            int cells = strengths.size() * Math.max(1, layers.size());
            if (cells > MAX_SWEEP_CELLS) {
                throw Refusal.invalidField("layers", strengths.size() + " strengths x " + layers.size()
                        + " layers = " + cells + " cells, at most " + MAX_SWEEP_CELLS);
            }
        }
    }

    /** One cell of the grid. */
    public record SweepCell(int layer, double strength, String completion, int tokens, String finishReason,
                            Double conceptScore, double perplexity) {
    }

    /**
     * @param baseline the unsteered continuation (its concept score and perplexity are the reference values)
     */
    public record SweepResult(long operatorId, String model, String prompt, String conceptPrompt, int operatorLayer,
                              Continuation baseline, List<SweepCell> cells, double ms) {
    }

    /** A sweep as stored in the job table (checked by {@link #sweep}). */
    public record SweepPayload(long operatorId, String prompt, long[] promptIds, List<Double> strengths,
                               List<Integer> layers, GenerationParams params) {
    }

    /** Checks the sweep, runs it as a job (any replica) and waits for its grid. */
    public SweepResult sweep(SweepSpec s) {
        return sweep(s, null);
    }

    /** As above, with the client's Idempotency-Key (null: none): a retry gets the first request's grid. */
    public SweepResult sweep(SweepSpec s, String idempotencyKey) {
        checkGrid(s.strengths(), s.layers());
        OperatorRecord record = operators.record(s.operatorId());
        LanguageModel model = operators.modelFor(record, s.model());
        List<Integer> layers = s.layers() == null || s.layers().isEmpty() ? List.of(record.layer) : s.layers();
        for (int l : layers) {
            checkLayer(model, l, record.layer, "layers");
        }
        long[] prompt = promptIds(model, s.prompt(), "prompt");
        JobStore.Job job = jobs.submit(SWEEP_KIND, model.id(), new SweepPayload(record.id, s.prompt(), prompt,
                s.strengths(), layers, s.params()), "sweep", idempotencyKey);
        return jobs.result(jobs.await(job.id(), "sweep"), SweepResult.class);
    }

    /** The sweep job's work: the baseline, then each cell (progress: cells done of all). */
    JobKind.Outcome runSweep(JobStore.Job job, JobKind.Progress progress) {
        SweepPayload p = jobs.request(job, SweepPayload.class);
        LanguageModel model = jobs.model(job);
        OperatorService.Loaded loaded = operators.load(p.operatorId());
        OperatorRecord record = loaded.record();
        operators.checkFingerprint("operator " + record.id, record.modelFingerprint, record.modelId, model);
        long[] prompt = p.promptIds();
        long[] concept = loaded.operator().conceptIds();
        int total = 1 + p.layers().size() * p.strengths().size();
        long t0 = System.nanoTime();
        progress.update("baseline and " + (total - 1) + " cells", 0);
        // every cell (and the baseline) is a row of the same batched steps; progress counts generated tokens
        java.util.concurrent.atomic.AtomicInteger tokens = new java.util.concurrent.atomic.AtomicInteger();
        java.util.function.Consumer<SteeredRun.Step> count = st -> tokens.incrementAndGet();
        List<SteeredRun.Decoding> runs = new ArrayList<>();
        runs.add(new SteeredRun.Decoding(model, prompt, p.params(), null, concept, 0, count));
        List<double[]> grid = new ArrayList<>();
        for (int layer : p.layers()) {
            SteeringOperator op = OperatorBuilder.atLayer(model, loaded.operator(), layer);
            for (double lambda : p.strengths()) {
                grid.add(new double[] {layer, lambda});
                runs.add(new SteeredRun.Decoding(model, prompt, p.params(),
                        m -> new Injector(op, lambda, m, model.dataType()), concept, 0, count));
            }
        }
        double most = (double) total * Math.max(1, p.params().maxNewTokens());
        decoders.runQueued(model, () -> progress.update("decoding " + total + " rows", tokens.get() / most),
                runs.toArray(SteeredRun.Decoding[]::new));
        Continuation base = continuation(runs.get(0).result());
        List<SweepCell> cells = new ArrayList<>();
        for (int i = 0; i < grid.size(); i++) {
            SteeredRun.Result r = runs.get(i + 1).result();
            cells.add(new SweepCell((int) grid.get(i)[0], grid.get(i)[1], r.generation().completion(),
                    r.generation().tokens().size(), r.generation().finishReason().name(), r.conceptScore(),
                    r.perplexity()));
        }
        SweepResult out = new SweepResult(record.id, model.id(), p.prompt(), record.conceptPrompt, record.layer, base,
                cells, (System.nanoTime() - t0) / 1e6);
        return () -> out;
    }

    // ---- shared checks -------------------------------------------------------------------------------------------

    public LanguageModel resolve(String id) {
        return registry.require(id);
    }

    /** {@code layer} (or {@code dflt} when null) within 1..L, else 400 invalid_layer. */
    public static int checkLayer(LanguageModel model, Integer layer, int dflt) {
        return checkLayer(model, layer, dflt, "layer");
    }

    /** As {@link #checkLayer(LanguageModel, Integer, int)}, the refusal naming {@code field}. */
    static int checkLayer(LanguageModel model, Integer layer, int dflt, String field) {
        int l = layer == null ? dflt : layer;
        int n = model.config().numLayers();
        if (l < 1 || l > n) {
            throw Refusal.invalidField(field, "must be between 1 and " + n + " (the layers of"
                    + " model '" + model.id() + "'), got " + l);
        }
        return l;
    }

    /** The prompt's ids: not empty, shorter than the context. */
    public static long[] promptIds(LanguageModel model, String text, String field) {
        return Texts.encode(model, text, field, 1);
    }

    String write(Object o) {
        try {
            return json.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Saved steering runs of {@code model} and {@code operatorId} (null: any), newest first. */
    public List<SteeringRun> runs(String model, Long operatorId, int limit) {
        return library.runs(model, operatorId, limit);
    }

    /** One saved run; 404 unknown_run when there is none. */
    public SteeringRun run(long id) {
        return library.run(id).orElseThrow(() -> Refusal.notFound("unknown_run", "run " + id + " does not exist"));
    }
}
