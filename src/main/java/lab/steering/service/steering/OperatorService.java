package lab.steering.service.steering;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.Arrays;
import java.util.List;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.Texts;
import lab.steering.service.device.DevicePolicy;
import lab.steering.service.jobs.JobKind;
import lab.steering.service.jobs.JobQueue;
import lab.steering.service.models.DeviceStatus;
import lab.steering.service.models.ModelFingerprints;
import lab.steering.service.models.ModelRegistry;
import lab.steering.steer.Fidelity;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.OperatorFile;
import lab.steering.steer.SteeringOperator;
import lab.steering.store.Columns;
import lab.steering.store.JobStore;
import lab.steering.store.OperatorLibrary;
import lab.steering.store.OperatorRecord;

/**
 * Steering operators as things in the library: build them (as jobs: Jacobian, optional SVD, fidelity), store and
 * load them through the {@link OperatorLibrary}, import and export their files, and check that an operator fits the
 * model it is used with. Steering with them is {@link SteeringService}'s.
 */
@ApplicationScoped
public class OperatorService {

    /** Longest concept prompt, in tokens. */
    public static final int MAX_CONCEPT_TOKENS = 64;
    /** Largest dense operator (values, T_c d^2): 1 GiB of float32, PostgreSQL's bytea limit. */
    public static final long MAX_DENSE_VALUES = 1L << 28;

    @Inject
    ModelRegistry registry;
    @Inject
    ModelFingerprints fingerprints;
    @Inject
    OperatorLibrary library;
    @Inject
    DeviceStatus device;
    @Inject
    lab.steering.config.LabConfig config;
    @Inject
    JobQueue jobs;
    @Inject
    ObjectMapper json;

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

    /** A build request as stored in the job table (every field checked by the caller). */
    public record BuildPayload(String name, String description, List<String> tags, String conceptPrompt, long[] ids,
                               int layer, boolean lowRank, int rank, double energy) {
    }

    /** A build job's result: the stored operator. */
    public record BuildResult(long operatorId) {
    }

    /**
     * An operator build as a client asks for it, its shape already checked by the caller (name, description and tags
     * within their limits, a concept prompt); null means the default: layer {@link OperatorBuilder#defaultLayer},
     * form "full", energy 0.99 for a low-rank form without a rank.
     */
    public record BuildRequest(String model, String name, String description, List<String> tags,
                               String conceptPrompt, Integer layer, String form, Integer rank, Double energy) {
    }

    /** A build whose every field passed {@link #plan}: what {@link #submitBuild} and {@link #build} take. */
    public record BuildPlan(LanguageModel model, String name, String description, List<String> tags,
                            String conceptPrompt, long[] ids, int layer, boolean lowRank, int rank, double energy) {
    }

    /**
     * The build's checks against the library's, the model's and this service's limits (400 invalid_FIELD naming the
     * field, 404 unknown_model): name, description and tags ({@link LibraryEntry}), the form and its rank or energy,
     * the layer, the concept prompt's tokens and the dense size.
     */
    public BuildPlan plan(BuildRequest req) {
        LibraryEntry.check(req.name(), true, req.description(), req.tags());
        LanguageModel model = registry.require(req.model());
        String form = req.form() == null ? "full" : req.form();
        if (!form.equals("full") && !form.equals("lowrank")) {
            throw Refusal.invalidField("form", "must be \"full\" or \"lowrank\", got \"" + form + "\"");
        }
        int d = model.config().hiddenSize();
        if (form.equals("full") && (req.rank() != null || req.energy() != null)) {
            throw Refusal.invalidField(req.rank() != null ? "rank" : "energy", "applies to form \"lowrank\" only");
        }
        if (req.rank() != null && req.energy() != null) {
            throw Refusal.invalidField("rank", "give rank or energy, not both");
        }
        if (req.rank() != null && (req.rank() < 1 || req.rank() > d)) {
            throw Refusal.invalidField("rank", "must be between 1 and " + d + " (d of model '" + model.id()
                    + "'), got " + req.rank());
        }
        double energy = req.energy() == null ? 0.99 : req.energy();
        if (!(energy > 0 && energy <= 1)) {
            throw Refusal.invalidField("energy", "must be in (0, 1], got " + req.energy());
        }
        int layer = SteeringService.checkLayer(model, req.layer(),
                OperatorBuilder.defaultLayer(model.config().numLayers()));
        long[] ids = Texts.tokens(model, req.conceptPrompt(), "conceptPrompt");
        if (ids.length == 0 || ids.length > MAX_CONCEPT_TOKENS) {
            throw Refusal.invalidField("conceptPrompt", "encodes to " + ids.length + " tokens, expected 1.."
                    + MAX_CONCEPT_TOKENS);
        }
        if ((long) ids.length * d * d > MAX_DENSE_VALUES) {
            throw Refusal.invalidField("conceptPrompt", ids.length + " tokens x d^2 = " + (long) ids.length * d * d
                    + " values exceeds the dense operator limit of " + MAX_DENSE_VALUES
                    + "; use a shorter concept prompt");
        }
        return new BuildPlan(model, req.name(), req.description(), req.tags(), req.conceptPrompt(), ids, layer,
                form.equals("lowrank"), req.rank() == null ? 0 : req.rank(), energy);
    }

    /**
     * Queues the planned build as a job (any replica runs it and stores the operator), with the client's
     * Idempotency-Key (null: none): a retry gets the first request's job. {@code Busy} when the job queue is full.
     */
    public JobStore.Job submitBuild(BuildPlan p, String idempotencyKey) {
        checkDeviceMemory(p.model(), p.ids().length, "the operator build");
        return jobs.submit(BUILD_KIND, p.model().id(), new BuildPayload(p.name(), p.description(), p.tags(),
                p.conceptPrompt(), p.ids(), p.layer(), p.lowRank(), p.rank(), p.energy()), "operator build",
                idempotencyKey);
    }

    /** A finished build: its job and the operator it stored. */
    public record Built(JobStore.Job job, OperatorRecord operator) {
    }

    /**
     * Builds the operator as a job with the client's Idempotency-Key (null: none) and waits for it: a retried
     * request with the same key follows the first one's job and gets the operator it stored, never a second one.
     */
    public Built build(BuildPlan p, String idempotencyKey) {
        JobStore.Job done = jobs.await(submitBuild(p, idempotencyKey).id(), "operator build");
        return new Built(done, builtBy(done));
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
        r.tags = Columns.tags(p.tags());
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
        return () -> new BuildResult(library.save(r, data, OperatorFile.sha256(data)).id);
    }

    // ---- library -----------------------------------------------------------------------------------------------

    /** A stored operator with its tensors. */
    public record Loaded(OperatorRecord record, SteeringOperator operator) {
    }

    public OperatorRecord record(long id) {
        return library.find(id).orElseThrow(() -> unknownOperator(id));
    }

    /** The library's operators of {@code model} (null: every model) matching {@code q} (null: all), newest first. */
    public List<OperatorRecord> search(String model, String q, int limit) {
        return library.search(model, q, limit);
    }

    /** Renames, redescribes or retags an operator (null: unchanged); 404 unknown_operator when there is none. */
    public OperatorRecord patch(long id, String name, String description, List<String> tags) {
        LibraryEntry.check(name, false, description, tags);
        return library.patch(id, name, description, tags).orElseThrow(() -> unknownOperator(id));
    }

    /**
     * Deletes an operator and its file (runs that used it keep their content); 404 unknown_operator when there is
     * none.
     */
    public void delete(long id) {
        if (!library.delete(id)) {
            throw unknownOperator(id);
        }
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
        LibraryEntry.check(name, false, description, tags);
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
        r.tags = Columns.tags(tags);
        r.modelId = model.id();
        r.modelFingerprint = d.fingerprint();
        r.conceptPrompt = d.conceptPrompt();
        r.conceptIds = write(op.conceptIds());
        r.layer = op.layer();
        r.form = op.isLowRank() ? "lowrank" : "full";
        r.rank = op.isLowRank() ? op.lowRank().rank() : null;
        r.dtype = "F32";
        r.build = null;
        return library.save(r, data, OperatorFile.sha256(data));
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
