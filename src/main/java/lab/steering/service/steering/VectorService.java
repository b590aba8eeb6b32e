package lab.steering.service.steering;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.Arrays;
import java.util.List;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.Texts;
import lab.steering.service.jobs.HeavyWork;
import lab.steering.service.models.ModelFingerprints;
import lab.steering.service.models.ModelRegistry;
import lab.steering.steer.ControlVector;
import lab.steering.steer.ControlVectorFile;
import lab.steering.steer.OperatorFile;
import lab.steering.steer.SteeringVector;
import lab.steering.store.Columns;
import lab.steering.store.VectorLibrary;
import lab.steering.store.VectorRecord;

/**
 * Saved steering vectors end to end: build (ActAdd, {@link SteeringVector}, one vector per layer), store and load
 * through the {@link VectorLibrary}, export and import GGUF control vectors ({@link ControlVectorFile}). The
 * stored data is the GGUF file, so a library vector is one llama.cpp can load: its layers are 3..L (llama.cpp has
 * no direction for HF hidden_states[0] and [1], see {@link ControlVector}).
 */
@ApplicationScoped
public class VectorService {

    /** Lowest layer a library vector may have: llama.cpp's direction.1. */
    public static final int MIN_LAYER = ControlVector.appLayer(1);

    @Inject
    OperatorService operators;
    @Inject
    VectorLibrary library;
    @Inject
    ModelFingerprints fingerprints;
    @Inject
    ModelRegistry registry;
    @Inject
    HeavyWork heavy;

    /** A stored vector with its directions. */
    public record Loaded(VectorRecord record, ControlVector vector, long[] conceptIds, long[] contrastIds) {
        public List<SteeringVector> steeringVectors() {
            return vector.steeringVectors(conceptIds, contrastIds);
        }
    }

    /** The default layer of a new vector: 2L/3 as for operators, at least {@link #MIN_LAYER}. */
    public static int defaultLayer(LanguageModel model) {
        return Math.max(MIN_LAYER, lab.steering.steer.OperatorBuilder.defaultLayer(model.config().numLayers()));
    }

    /**
     * Checks the layers of a new vector: distinct, each {@link #MIN_LAYER}..L (400 {@code invalid_<field>}).
     */
    public static int[] checkLayers(LanguageModel model, List<Integer> layers, String field) {
        int n = model.config().numLayers();
        if (layers.isEmpty() || layers.stream().anyMatch(java.util.Objects::isNull) || layers.stream().distinct().count() != layers.size()) {
            throw Refusal.invalidField(field, "must be distinct layer numbers, at least one");
        }
        for (int l : layers) {
            if (l < MIN_LAYER || l > n) {
                throw Refusal.invalidField(field, "must be between " + MIN_LAYER + " and " + n
                        + " for model '" + model.id() + "', got " + l + " (a saved vector is a GGUF control vector,"
                        + " and llama.cpp steers no residual before HF hidden_states[2]: layer " + MIN_LAYER
                        + " is its direction.1)");
            }
        }
        return layers.stream().mapToInt(Integer::intValue).sorted().toArray();
    }

    /**
     * A vector build as a client asks for it (a concept prompt given); {@code layer} or {@code layers} (null: the
     * default layer, {@link #defaultLayer}); a null model is the default one.
     */
    public record BuildRequest(String model, String name, String description, List<String> tags,
                               String conceptPrompt, String contrastPrompt, Integer layer, List<Integer> layers) {
    }

    /**
     * Checks the request against the library's and the model's limits (400 invalid_FIELD, 404 unknown_model), then
     * builds and stores the vector (one per layer asked for, in one file).
     */
    public VectorRecord build(BuildRequest req) {
        LibraryEntry.check(req.name(), true, req.description(), req.tags());
        LanguageModel model = registry.require(req.model());
        if (req.layer() != null && req.layers() != null) {
            throw Refusal.invalidField("layers", "give layer or layers, not both");
        }
        int[] layers = req.layers() != null ? checkLayers(model, req.layers(), "layers")
                : checkLayers(model, List.of(req.layer() != null ? req.layer() : defaultLayer(model)), "layer");
        return build(model, req.name(), req.description(), req.tags(), req.conceptPrompt(), req.contrastPrompt(),
                layers);
    }

    /** Builds the vector of {@code conceptPrompt} minus {@code contrastPrompt} at {@code layers} and stores it. */
    private VectorRecord build(LanguageModel model, String name, String description, List<String> tags,
                               String conceptPrompt, String contrastPrompt, int[] layers) {
        long[] concept = Texts.tokens(model, conceptPrompt, "conceptPrompt");
        if (concept.length == 0 || concept.length > OperatorService.MAX_CONCEPT_TOKENS) {
            throw Refusal.invalidField("conceptPrompt", "encodes to " + concept.length
                    + " tokens, expected 1.." + OperatorService.MAX_CONCEPT_TOKENS);
        }
        String contrastText = contrastPrompt == null ? "" : contrastPrompt;
        long[] contrast = Texts.tokens(model, contrastText, "contrastPrompt");
        if (contrast.length > OperatorService.MAX_CONCEPT_TOKENS) {
            throw Refusal.invalidField("contrastPrompt", "encodes to " + contrast.length
                    + " tokens, at most " + OperatorService.MAX_CONCEPT_TOKENS);
        }
        ControlVector v = ControlVector.of(heavy.run("vector build",
                () -> SteeringVector.build(model, concept, contrast, layers)));
        String fp = fingerprints.of(model);
        byte[] data = ControlVectorFile.encode(v, new ControlVectorFile.Provenance(model.config().modelType(), fp,
                conceptPrompt, contrastText, concept, contrast));
        VectorRecord r = record(name, description, tags, model, fp, v);
        r.conceptPrompt = conceptPrompt;
        r.contrastPrompt = contrastText;
        r.conceptIds = operators.write(concept);
        r.contrastIds = operators.write(contrast);
        r.source = "built";
        return library.save(r, data, OperatorFile.sha256(data));
    }

    private static VectorRecord record(String name, String description, List<String> tags, LanguageModel model,
                                       String fingerprint, ControlVector v) {
        VectorRecord r = new VectorRecord();
        r.name = name;
        r.description = description == null ? "" : description;
        r.tags = Columns.tags(tags);
        r.modelId = model.id();
        r.modelFingerprint = fingerprint;
        r.layers = v.layers();
        r.dim = v.dim();
        r.dtype = "F32";
        return r;
    }

    public VectorRecord record(long id) {
        return library.find(id).orElseThrow(() -> unknownVector(id));
    }

    /** The library's vectors of {@code model} (null: every model) matching {@code q} (null: all), newest first. */
    public List<VectorRecord> search(String model, String q, int limit) {
        return library.search(model, q, limit);
    }

    /** Renames, redescribes or retags a vector (null: unchanged); 404 unknown_vector when there is none. */
    public VectorRecord patch(long id, String name, String description, List<String> tags) {
        LibraryEntry.check(name, false, description, tags);
        return library.patch(id, name, description, tags).orElseThrow(() -> unknownVector(id));
    }

    /** Deletes a vector and its file; 404 unknown_vector when there is none. */
    public void delete(long id) {
        if (!library.delete(id)) {
            throw unknownVector(id);
        }
    }

    public Loaded load(long id) {
        VectorRecord r = record(id);
        byte[] data = export(id);
        try {
            ControlVectorFile.Decoded d = ControlVectorFile.decode(data);
            return new Loaded(r, d.vector(), d.provenance().conceptIds(), d.provenance().contrastIds());
        } catch (ControlVectorFile.InvalidException e) {
            throw new IllegalStateException("stored vector " + id + " is damaged: " + e.getMessage(), e);
        }
    }

    /** The stored GGUF bytes, unchanged. */
    public byte[] export(long id) {
        return library.data(id).orElseThrow(() -> unknownVector(id));
    }

    public static Refusal unknownVector(long id) {
        return new Refusal(Refusal.Kind.NOT_FOUND, "unknown_vector", "vector " + id + " does not exist");
    }

    /** The model a request names (else the vector's own), loaded and with the vector's fingerprint (404, 409). */
    public LanguageModel modelFor(VectorRecord r, String requested) {
        return operators.modelFor("vector " + r.id, r.modelId, r.modelFingerprint, requested);
    }

    /**
     * Checks an uploaded GGUF control vector and stores it; nothing is written when a check fails. A file the app
     * wrote names its model and fingerprint (checked against the target model, 409 on a mismatch); another tool's
     * file names neither, so {@code modelId} is required for it and only its width and layers are checked.
     * The stored data is the app's own encoding of the same directions (bit for bit), with its metadata.
     */
    public VectorRecord importFile(byte[] data, String modelId, String name, String description, List<String> tags,
                                   String sha256) {
        LibraryEntry.check(name, false, description, tags);
        OperatorService.checkUpload(data, sha256, ".gguf");
        ControlVectorFile.Decoded d;
        try {
            d = ControlVectorFile.decode(data);
        } catch (ControlVectorFile.InvalidException e) {
            throw Refusal.invalidField("file", "" + e.getMessage());
        }
        boolean given = modelId != null && !modelId.isBlank();
        if (!given && !d.ours()) {
            throw Refusal.invalidField("model", "is required for a control vector another tool wrote"
                    + " (?model=, the loaded model it was made for)");
        }
        String target = given ? modelId : d.vector().modelId();
        LanguageModel model = registry.find(target).orElseThrow(() -> registry.unknownModel(target, "", ""));
        String fp = fingerprints.of(model);
        if (d.ours()) {
            operators.checkFingerprint("the file", d.provenance().fingerprint(), d.vector().modelId(), model);
        }
        var c = model.config();
        if (d.vector().dim() != c.hiddenSize()) {
            throw Refusal.invalidField("file", "its directions have width " + d.vector().dim()
                    + ", model '" + model.id() + "' has d = " + c.hiddenSize());
        }
        for (int layer : d.vector().layers()) {
            if (layer > c.numLayers()) {
                int n = ControlVector.ggufIndex(layer);
                throw Refusal.invalidField("file", "direction." + n + " is added after llama.cpp's layer "
                        + n + " (HF hidden_states[" + (n + 1) + "]); model '" + model.id() + "' has "
                        + c.numLayers() + " layers and the app steers up to hidden_states[" + (c.numLayers() - 1)
                        + "] (direction.1..direction." + ControlVector.ggufIndex(c.numLayers()) + ")");
            }
        }
        ControlVectorFile.Provenance p = d.provenance();
        if (outside(p.conceptIds(), c.vocabSize()) || outside(p.contrastIds(), c.vocabSize())) {
            throw Refusal.invalidField("file", "concept or contrast ids do not fit the vocabulary of model '"
                    + model.id() + "' (" + c.vocabSize() + ")");
        }
        String concept = p.conceptPrompt() == null ? "" : p.conceptPrompt();
        String contrast = p.contrastPrompt() == null ? "" : p.contrastPrompt();
        ControlVector v = new ControlVector(model.id(), d.vector().dim(), d.vector().layers(), d.vector().directions());
        String hint = p.modelHint() == null ? c.modelType() : p.modelHint();
        byte[] stored = ControlVectorFile.encode(v, new ControlVectorFile.Provenance(hint, fp, concept, contrast,
                p.conceptIds(), p.contrastIds()));
        String label = concept.isEmpty() ? "control vector" + (p.modelHint() == null ? "" : " (" + p.modelHint() + ")")
                : OperatorService.abbreviate(concept, 60);
        VectorRecord r = record(name == null || name.isBlank() ? "imported: " + label : name, description, tags,
                model, fp, v);
        r.conceptPrompt = concept;
        r.contrastPrompt = contrast;
        r.conceptIds = operators.write(p.conceptIds());
        r.contrastIds = operators.write(p.contrastIds());
        r.source = "imported";
        return library.save(r, stored, OperatorFile.sha256(stored));
    }

    private static boolean outside(long[] ids, int vocab) {
        return Arrays.stream(ids).anyMatch(id -> id >= vocab);
    }
}
