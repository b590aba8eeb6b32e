package lab.steering.service;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import lab.steering.generate.GeneratedToken;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import lab.steering.steer.ControlVectorInjector;
import lab.steering.steer.Fidelity;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.OperatorFile;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.Steerer;
import lab.steering.steer.SteeringOperator;
import lab.steering.steer.SteeringVector;
import lab.steering.steer.VectorInjector;
import lab.steering.store.DatabaseErrors;
import lab.steering.store.OperatorRecord;
import lab.steering.store.SteeringRun;
import org.jboss.logging.Logger;

/**
 * Steering operators end to end: build (Jacobian, optional SVD, fidelity), store and load through the
 * {@link OperatorLibrary}, import and export, steer a prompt (unsteered and steered side by side, with per-token
 * diagnostics) and sweep strengths and layers. Not transactional itself: computations run outside transactions,
 * and only the library's short calls touch the database.
 */
@ApplicationScoped
public class SteeringService {

    private static final Logger LOG = Logger.getLogger(SteeringService.class);

    /** Documented range of the strength lambda: negative values push away from the concept. */
    public static final double MAX_STRENGTH = 10;
    /** Longest concept prompt, in tokens. */
    public static final int MAX_CONCEPT_TOKENS = 64;
    /** Largest dense operator (values, T_c d^2): 1 GiB of float32, PostgreSQL's bytea limit. */
    public static final long MAX_DENSE_VALUES = 1L << 28;
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
    DeviceStatus device;
    @Inject
    lab.steering.config.LabConfig config;
    @Inject
    JobQueue jobs;
    @Inject
    ObjectMapper json;
    @Inject
    VectorService vectors;

    // ---- build -----------------------------------------------------------------------------------------------

    /**
     * What a build measured.
     *
     * @param fullBytes    size of the dense form (T_c d^2 float32)
     * @param lowRankBytes size of the low-rank factors (T_c r (2d + 1) float32), null for a full build
     * @param energy       the energy threshold asked for (null when a rank was given, or for a full build)
     * @param energyKept   the smallest fraction of a token's ||J_i||_F^2 the factors keep
     * @param fidelity     the low-rank form against the dense one on a fixed text
     */
    public record BuildReport(int conceptTokens, int dim, long fullBytes, Long lowRankBytes, Integer rank,
                              Double energy, Double energyKept, Fidelity fidelity, double jacobianMs, double svdMs) {
    }

    /** Job kinds (see {@link OperatorBuildJobs}, {@link SweepJobs}). */
    public static final String BUILD_KIND = "operator-build";
    public static final String SWEEP_KIND = "sweep";

    /** A build request as stored in the job table (every field checked by the caller). */
    public record BuildPayload(String name, String description, List<String> tags, String conceptPrompt, long[] ids,
                               int layer, boolean lowRank, int rank, double energy) {
    }

    /** A build job's result: the stored operator. */
    public record BuildResult(long operatorId) {
    }

    /**
     * Queues the build of the operator of {@code conceptPrompt} as a job (any replica runs it and stores the
     * operator); the caller checked every field. {@link WorkLimiter.Busy} when the job queue is full.
     */
    public JobStore.Job submitBuild(LanguageModel model, String name, String description, List<String> tags,
                                    String conceptPrompt, long[] ids, int layer, boolean lowRank, int rank,
                                    double energy) {
        return submitBuild(model, name, description, tags, conceptPrompt, ids, layer, lowRank, rank, energy, null);
    }

    /** As above, with the client's Idempotency-Key (null: none): a retry gets the first request's job. */
    public JobStore.Job submitBuild(LanguageModel model, String name, String description, List<String> tags,
                                    String conceptPrompt, long[] ids, int layer, boolean lowRank, int rank,
                                    double energy, String idempotencyKey) {
        checkDeviceMemory(model, ids.length, "the operator build");
        return jobs.submit(BUILD_KIND, model.id(), new BuildPayload(name, description, tags, conceptPrompt, ids,
                layer, lowRank, rank, energy), "operator build", idempotencyKey);
    }

    /** A finished build: its job and the operator it stored. */
    public record Built(JobStore.Job job, OperatorRecord operator) {
    }

    /**
     * Builds the operator as a job with the client's Idempotency-Key (null: none) and waits for it: a retried
     * request with the same key follows the first one's job and gets the operator it stored, never a second one.
     */
    public Built build(LanguageModel model, String name, String description, List<String> tags,
                       String conceptPrompt, long[] ids, int layer, boolean lowRank, int rank, double energy,
                       String idempotencyKey) {
        JobStore.Job job = submitBuild(model, name, description, tags, conceptPrompt, ids, layer, lowRank, rank,
                energy, idempotencyKey);
        JobStore.Job done = jobs.await(job.id(), "operator build");
        return new Built(done, builtBy(done));
    }

    /** Builds the operator of {@code conceptPrompt} (as a job, waiting for it) and returns it stored. */
    public OperatorRecord build(LanguageModel model, String name, String description, List<String> tags,
                                String conceptPrompt, long[] ids, int layer, boolean lowRank, int rank,
                                double energy) {
        JobStore.Job job = submitBuild(model, name, description, tags, conceptPrompt, ids, layer, lowRank, rank,
                energy);
        return builtBy(jobs.await(job.id(), "operator build"));
    }

    /** The operator a finished build job stored. */
    public OperatorRecord builtBy(JobStore.Job done) {
        return record(jobs.result(done, BuildResult.class).operatorId());
    }

    /** The build job's work: the Jacobians (progress: rows of d), the optional SVD and fidelity, then the save. */
    JobKind.Outcome runBuild(JobStore.Job job, JobKind.Progress progress) {
        LanguageModel model = jobs.model(job);
        BuildPayload p = jobs.request(job, BuildPayload.class);
        long[] ids = p.ids();
        int d = model.config().hiddenSize();
        progress.update("jacobian", 0);
        long t0 = System.nanoTime();
        SteeringOperator dense = OperatorBuilder.full(model, ids, p.layer(), model.dataType(),
                rows -> progress.update("jacobian", 0.9 * rows / Math.max(1, d)));
        long t1 = System.nanoTime();
        long fullBytes = dense.storedValues() * 4;
        SteeringOperator op;
        BuildReport report;
        if (!p.lowRank()) {
            op = dense;
            report = new BuildReport(ids.length, dense.dim(), fullBytes, null, null, null, null, null,
                    (t1 - t0) / 1e6, 0);
        } else {
            progress.update("svd", 0.9);
            SteeringOperator lr = OperatorBuilder.lowRank(dense, p.rank(), p.energy());
            long t2 = System.nanoTime();
            progress.update("fidelity", 0.95);
            Fidelity f = Fidelity.of(model, dense, lr);
            op = lr;
            report = new BuildReport(ids.length, dense.dim(), fullBytes, lr.storedValues() * 4, lr.lowRank().rank(),
                    p.rank() > 0 ? null : p.energy(), OperatorBuilder.energyKept(dense, lr), f, (t1 - t0) / 1e6,
                    (t2 - t1) / 1e6);
        }
        progress.update("store", 0.99);
        String fp = fingerprints.of(model);
        OperatorRecord r = new OperatorRecord();
        r.name = p.name();
        r.description = p.description() == null ? "" : p.description();
        r.tags = Texts.tags(p.tags());
        r.modelId = model.id();
        r.modelFingerprint = fp;
        r.conceptPrompt = p.conceptPrompt();
        r.conceptIds = write(ids);
        r.layer = p.layer();
        r.form = p.lowRank() ? "lowrank" : "full";
        r.rank = p.lowRank() ? op.lowRank().rank() : null;
        r.dtype = "F32";
        r.build = write(report);
        byte[] data = OperatorFile.encode(op, fp, p.conceptPrompt());
        return () -> new BuildResult(library.save(r, data).id);
    }

    // ---- library -----------------------------------------------------------------------------------------------

    /** A stored operator with its tensors. */
    public record Loaded(OperatorRecord record, SteeringOperator operator) {
    }

    public OperatorRecord record(long id) {
        return library.find(id).orElseThrow(() -> unknownOperator(id));
    }

    public Loaded load(long id) {
        OperatorRecord r = record(id);
        byte[] data = library.data(id).orElseThrow(() -> unknownOperator(id));
        try {
            return new Loaded(r, OperatorFile.decode(data).operator());
        } catch (OperatorFile.InvalidException e) {
            throw new IllegalStateException("stored operator " + id + " is damaged: " + e.getMessage(), e);
        }
    }

    public byte[] export(long id) {
        return library.data(id).orElseThrow(() -> unknownOperator(id));
    }

    /**
     * A low-rank operator's factors for other tools ({@link lab.steering.steer.LowRankExport}); a dense operator is
     * refused (400 invalid_format): its stored form has no factors.
     */
    public byte[] exportLowRank(long id) {
        Loaded loaded = load(id);
        OperatorRecord r = loaded.record();
        if (!loaded.operator().isLowRank()) {
            throw Refusal.invalidField("format", "operator " + id + " is stored dense (form \"full\"); "
                    + "format=lowrank exports the factors of a low-rank operator (build one with form \"lowrank\"), "
                    + "the default export has the dense stack");
        }
        com.fasterxml.jackson.databind.JsonNode fidelity = null;
        try {
            fidelity = r.build == null ? null : json.readTree(r.build).get("fidelity");
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("operator " + id + ": stored build report is not readable", e);
        }
        return lab.steering.steer.LowRankExport.encode(loaded.operator(), r.modelFingerprint, r.conceptPrompt,
                fidelity);
    }

    private static Refusal unknownOperator(long id) {
        return new Refusal(Refusal.Kind.NOT_FOUND, "unknown_operator", "operator " + id + " does not exist");
    }

    /**
     * Checks an uploaded operator file and stores it, bytes unchanged; nothing is written when any check fails.
     *
     * @param modelId  the model to import into (default: the one the file names)
     * @param sha256   when given, the file's SHA-256 must equal it
     */
    public OperatorRecord importFile(byte[] data, String modelId, String name, String description, List<String> tags,
                                     String sha256) {
        checkUpload(data, sha256, ".safetensors");
        OperatorFile.Decoded d;
        try {
            d = OperatorFile.decode(data);
        } catch (OperatorFile.InvalidException e) {
            throw Refusal.invalidField("file", "" + e.getMessage());
        }
        SteeringOperator op = d.operator();
        String target = modelId == null || modelId.isBlank() ? op.modelId() : modelId;
        LanguageModel model = registry.find(target).orElseThrow(() -> registry.unknownModel(target, "", modelId == null
                ? "; the file names it: pass ?model= to import into a model with the same fingerprint" : ""));
        checkFingerprint("the file", d.fingerprint(), op.modelId(), model);
        var c = model.config();
        if (op.dim() != c.hiddenSize() || op.layer() > c.numLayers()
                || Arrays.stream(op.conceptIds()).anyMatch(id -> id >= c.vocabSize())) {
            throw Refusal.invalidField("file", "dim " + op.dim() + ", layer " + op.layer()
                    + " or concept ids do not fit model '" + model.id() + "' (d = " + c.hiddenSize() + ", "
                    + c.numLayers() + " layers, vocabulary " + c.vocabSize() + ")");
        }
        OperatorRecord r = new OperatorRecord();
        r.name = name == null || name.isBlank() ? "imported: " + abbreviate(d.conceptPrompt(), 60) : name;
        r.description = description == null ? "" : description;
        r.tags = Texts.tags(tags);
        r.modelId = model.id();
        r.modelFingerprint = d.fingerprint();
        r.conceptPrompt = d.conceptPrompt();
        r.conceptIds = write(op.conceptIds());
        r.layer = op.layer();
        r.form = op.isLowRank() ? "lowrank" : "full";
        r.rank = op.isLowRank() ? op.lowRank().rank() : null;
        r.dtype = "F32";
        r.build = null;
        return library.save(r, data);
    }

    /**
     * An uploaded file before it is decoded: 400 invalid_file when it is empty ({@code extension} names what to
     * send) or when {@code sha256} is given and differs from the file's.
     */
    static void checkUpload(byte[] data, String sha256, String extension) {
        if (data == null || data.length == 0) {
            throw Refusal.invalidField("file", "the request body is empty (send the " + extension
                    + " bytes)");
        }
        if (sha256 != null && !sha256.equalsIgnoreCase(OperatorFile.sha256(data))) {
            throw Refusal.invalidField("file", "its SHA-256 is " + OperatorFile.sha256(data)
                    + ", not the " + sha256 + " given (damaged in transit?)");
        }
    }

    /** 409 when {@code model} is not the model (by fingerprint) that {@code what} was built for. */
    void checkFingerprint(String what, String fingerprint, String builtOn, LanguageModel model) {
        String have = fingerprints.of(model);
        if (!have.equals(fingerprint)) {
            throw new Refusal(Refusal.Kind.CONFLICT, "fingerprint_mismatch", what + " was built for model '" + builtOn
                    + "' with fingerprint " + fingerprint + ", but model '" + model.id() + "' has fingerprint " + have);
        }
    }

    /** The model to steer with: the requested one, else the operator's; it must have the operator's fingerprint. */
    /**
     * The model a request names (else the operator's own), loaded and with the operator's fingerprint: 404 when it
     * is not available, 409 naming both fingerprints when the operator was built for another model.
     */
    public LanguageModel modelFor(OperatorRecord r, String requested) {
        return modelFor("operator " + r.id, r.modelId, r.modelFingerprint, requested);
    }

    /** As {@link #modelFor(OperatorRecord, String)} for {@code what} (an operator, a vector) built on a model. */
    LanguageModel modelFor(String what, String builtOn, String fingerprint, String requested) {
        String id = requested == null || requested.isBlank() ? builtOn : requested;
        LanguageModel model = registry.find(id).orElseThrow(() -> registry.unknownModel(id, "", ""));
        checkFingerprint(what, fingerprint, builtOn, model);
        return model;
    }

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
            Loaded loaded = load(s.operatorId());
            record = loaded.record();
            LanguageModel mdl = modelFor(record, s.model());
            model = mdl;
            layer = checkLayer(mdl, s.layer(), record.layer);
            int at = layer;
            if (at != record.layer) {
                checkDeviceMemory(mdl, loaded.operator().tokens(), "rebuilding the operator at layer " + at);
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
            if (concept.length == 0 || concept.length > MAX_CONCEPT_TOKENS) {
                throw new Refusal(Refusal.Kind.INVALID, "invalid_vector.conceptPrompt",
                        "vector.conceptPrompt: encodes to "
                        + concept.length + " tokens, expected 1.." + MAX_CONCEPT_TOKENS);
            }
            long[] contrast = Texts.tokens(model, s.vectorContrast() == null ? "" : s.vectorContrast(),
                    "vector.contrastPrompt");
            if (contrast.length > MAX_CONCEPT_TOKENS) {
                throw new Refusal(Refusal.Kind.INVALID, "invalid_vector.contrastPrompt",
                        "vector.contrastPrompt: encodes to "
                        + contrast.length + " tokens, at most " + MAX_CONCEPT_TOKENS);
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
        Long runId = null;
        try {
            runId = library.saveRun(run);
        } catch (RuntimeException e) {
            if (!DatabaseErrors.unavailable(e)) {
                throw e;
            }
            LOG.warnf("steering run not stored, the database is unavailable: %s", e.getMessage());
        }
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
        OperatorRecord record = record(s.operatorId());
        LanguageModel model = modelFor(record, s.model());
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
        Loaded loaded = load(p.operatorId());
        OperatorRecord record = loaded.record();
        checkFingerprint("operator " + record.id, record.modelFingerprint, record.modelId, model);
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

    /**
     * On a GPU, refuses (413 too_large, with the estimate) a build whose Jacobian stack would not fit the GPU's free
     * memory less lab.gpu.memory-reserve, before it starts, rather than failing out of memory half-way. On the CPU
     * builds are bounded by the concept prompt's token limit alone, as before.
     */
    void checkDeviceMemory(LanguageModel model, int tokens, String what) {
        if (!device.gpu()) {
            return;
        }
        lab.steering.jacobian.Analysis.Options o = new lab.steering.jacobian.Analysis.Options(
                lab.steering.jacobian.Analysis.Method.FULL, model.dataType(), 1, new int[0],
                lab.steering.jacobian.Target.Mode.CUMULATIVE, lab.steering.jacobian.Target.Component.LAYER, false,
                config.jacobian().chunkBytes().asLongValue());
        long bytes = lab.steering.jacobian.Analysis.estimate(model.config(), tokens, model.dataType(), o, true)
                .bytes();
        DevicePolicy.Budget b = device.budget();
        if (!b.fits(bytes)) {
            throw new Refusal(Refusal.Kind.TOO_LARGE, "too_large",
                    String.format(java.util.Locale.ROOT, "%s (%d concept tokens of"
                            + " model '%s') needs about %.0f MB, more than the %.0f MB allowed (%s); use a shorter"
                            + " concept prompt", what, tokens, model.id(), bytes / 1048576.0,
                    b.limitBytes() / 1048576.0, b.limitedBy()));
        }
    }

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

    static String abbreviate(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }

    String write(Object o) {
        try {
            return json.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
