package lab.steering.steer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * A {@link ControlVector} as a GGUF control vector, the file llama.cpp's {@code --control-vector} loads (and
 * repeng and other tools write): {@code general.architecture = "controlvector"}, {@code controlvector.model_hint}
 * (the model's HF model_type), {@code controlvector.layer_count} (i32, the number of direction tensors, as
 * llama.cpp's cvector-generator writes it) and one F32 1-D tensor {@code direction.N} of width d per layer, N in
 * llama.cpp's numbering (N = app layer - 2, see {@link ControlVector}). This is also the stored form: the database
 * holds these bytes and export returns them unchanged.
 * <p>
 * The app adds keys of its own under {@code steering_lab.} (llama.cpp ignores unknown keys): format, version, model,
 * fingerprint, layers (app numbering), concept and contrast prompts and their ids, and a note on the numbering and
 * the scaling. Nothing mutable (name, tags) is in the file, so the same vector always gives the same bytes.
 * <p>
 * Scaling: llama.cpp adds {@code strength * direction} unnormalised at every position; the app adds
 * {@code lambda * v * ||h|| / (2 ||v||)}. The file holds v as the app built it (the mean residual difference,
 * not normalised), so llama.cpp's strength s matches the app's lambda where s = lambda * ||h|| / (2 ||v||).
 */
public final class ControlVectorFile {

    public static final String FORMAT = "steering-lab-vector";
    public static final String VERSION = "1";
    static final String ARCH = "controlvector";
    /** More direction tensors than any model has layers. */
    static final int MAX_DIRECTIONS = 1024;
    private static final Pattern DIRECTION = Pattern.compile("direction\\.([1-9][0-9]{0,8})");
    private static final ObjectMapper JSON = new ObjectMapper();

    public static final String NUMBERING = "direction.N is added to the output of llama.cpp's 0-based layer N "
            + "(HF hidden_states[N+1]); steering_lab.layers lists the app's layers l = N + 2 (the residual entering "
            + "0-based layer l-1, HF hidden_states[l-1], as an operator's split layer)";
    public static final String SCALING = "llama.cpp adds strength * direction; the app adds "
            + "lambda * direction * ||h|| / (2 ||direction||)";

    private ControlVectorFile() {
    }

    /** A file that is not a control vector the app can read; the message names the problem. */
    public static final class InvalidException extends RuntimeException {
        public InvalidException(String message) {
            super(message);
        }
    }

    /**
     * Where a vector comes from (all but the model hint may be empty for a file another tool wrote).
     *
     * @param modelHint HF model_type ("llama"), written as controlvector.model_hint
     */
    public record Provenance(String modelHint, String fingerprint, String conceptPrompt, String contrastPrompt,
                             long[] conceptIds, long[] contrastIds) {
    }

    /**
     * A decoded file.
     *
     * @param vector     its directions in app layers ({@code modelId} from the app's metadata, null otherwise)
     * @param provenance fingerprint and prompts from the app's metadata (null fields in another tool's file)
     * @param ours       whether the app wrote it (the steering_lab keys are present)
     */
    public record Decoded(ControlVector vector, Provenance provenance, boolean ours, Map<String, Object> metadata) {
    }

    /** The file for {@code v}; every layer must be >= 3 (llama.cpp has no direction.0, see {@link ControlVector}). */
    public static byte[] encode(ControlVector v, Provenance p) {
        for (int layer : v.layers()) {
            if (ControlVector.ggufIndex(layer) < 1) {
                throw new IllegalArgumentException("layer " + layer + " has no llama.cpp counterpart (layers >= 3)");
            }
        }
        Gguf.Writer w = new Gguf.Writer()
                .string("general.architecture", ARCH)
                .string("controlvector.model_hint", p.modelHint())
                .int32("controlvector.layer_count", v.layers().length)
                .string("steering_lab.format", FORMAT)
                .string("steering_lab.version", VERSION)
                .string("steering_lab.model", v.modelId())
                .string("steering_lab.fingerprint", p.fingerprint())
                .string("steering_lab.layers", ids(Arrays.stream(v.layers()).asLongStream().toArray()))
                .string("steering_lab.layer_numbering", NUMBERING)
                .string("steering_lab.scaling", SCALING)
                .string("steering_lab.concept_prompt", p.conceptPrompt())
                .string("steering_lab.contrast_prompt", p.contrastPrompt())
                .string("steering_lab.concept_ids", ids(p.conceptIds()))
                .string("steering_lab.contrast_ids", ids(p.contrastIds()));
        for (int i = 0; i < v.layers().length; i++) {
            w.f32("direction." + ControlVector.ggufIndex(v.layers()[i]), v.directions()[i], v.dim());
        }
        return w.toBytes();
    }

    private static String ids(long[] ids) {
        return Arrays.toString(ids).replace(" ", "");
    }

    /**
     * Parses and checks a file on its own (its width and layers against a model are the caller's): well-formed GGUF,
     * architecture controlvector when named, only {@code direction.N} tensors (N >= 1), each F32, 1-D, one width,
     * finite; and, when the app wrote it, metadata that agrees with the tensors.
     */
    public static Decoded decode(byte[] data) {
        Gguf.File f;
        try {
            f = Gguf.parse(data);
        } catch (Gguf.InvalidException e) {
            throw new InvalidException(e.getMessage());
        }
        Map<String, Object> meta = f.metadata();
        Object arch = meta.get("general.architecture");
        if (f.types().containsKey("general.architecture") && !ARCH.equals(arch)) {
            throw new InvalidException("general.architecture is " + (arch instanceof String s ? "'" + s + "'"
                    : "not a string") + ", expected '" + ARCH + "' (a model file is not a control vector)");
        }
        if (f.tensors().isEmpty()) {
            throw new InvalidException("no direction tensors");
        }
        if (f.tensors().size() > MAX_DIRECTIONS) {
            throw new InvalidException(f.tensors().size() + " tensors, at most " + MAX_DIRECTIONS);
        }
        TreeMap<Integer, float[]> byIndex = new TreeMap<>();
        long width = -1;
        for (Gguf.Tensor t : f.tensors()) {
            var m = DIRECTION.matcher(t.name());
            if (!m.matches()) {
                throw new InvalidException("tensor '" + t.name() + "' is not named direction.N with N >= 1");
            }
            if (t.type() != Gguf.GGML_F32) {
                throw new InvalidException("tensor '" + t.name() + "' has ggml type " + t.type()
                        + ", expected F32 (0)");
            }
            if (t.shape().length != 1) {
                throw new InvalidException("tensor '" + t.name() + "' has shape " + Arrays.toString(t.shape())
                        + ", expected one dimension");
            }
            if (t.shape()[0] < 1 || t.shape()[0] > 1 << 20) {
                throw new InvalidException("tensor '" + t.name() + "' has width " + t.shape()[0] + " (1..1048576)");
            }
            if (width >= 0 && t.shape()[0] != width) {
                throw new InvalidException("tensor '" + t.name() + "' has width " + t.shape()[0] + ", the others "
                        + width);
            }
            width = t.shape()[0];
            float[] v = f.floats(t);
            for (float x : v) {
                if (!Float.isFinite(x)) {
                    throw new InvalidException("tensor '" + t.name() + "' holds a non-finite value");
                }
            }
            byIndex.put(Integer.parseInt(m.group(1)), v);
        }
        int[] layers = byIndex.keySet().stream().mapToInt(ControlVector::appLayer).toArray();
        float[][] dirs = byIndex.values().toArray(new float[0][]);
        boolean ours = FORMAT.equals(meta.get("steering_lab.format"));
        String hint = text(meta, "controlvector.model_hint");
        if (!ours) {
            return new Decoded(new ControlVector(null, (int) width, layers, dirs),
                    new Provenance(hint, null, null, null, new long[0], new long[0]), false, meta);
        }
        if (!VERSION.equals(meta.get("steering_lab.version"))) {
            throw new InvalidException("steering_lab.version '" + meta.get("steering_lab.version")
                    + "' is not supported (supported: " + VERSION + ")");
        }
        if (!Arrays.equals(Arrays.stream(layers).asLongStream().toArray(), idList(meta, "steering_lab.layers"))) {
            throw new InvalidException("steering_lab.layers " + meta.get("steering_lab.layers")
                    + " does not match the direction tensors (app layers " + Arrays.toString(layers) + ")");
        }
        Provenance p = new Provenance(hint, required(meta, "steering_lab.fingerprint"),
                required(meta, "steering_lab.concept_prompt"), required(meta, "steering_lab.contrast_prompt"),
                idList(meta, "steering_lab.concept_ids"), idList(meta, "steering_lab.contrast_ids"));
        return new Decoded(new ControlVector(required(meta, "steering_lab.model"), (int) width, layers, dirs), p,
                true, meta);
    }

    private static String text(Map<String, Object> meta, String key) {
        Object v = meta.get(key);
        if (v != null && !(v instanceof String)) {
            throw new InvalidException("metadata '" + key + "' is not a string");
        }
        String s = (String) v;
        if (s != null && s.indexOf('\0') >= 0) { // stored as text, which PostgreSQL cannot hold with NUL
            throw new InvalidException("metadata '" + key + "' contains the NUL character (U+0000)");
        }
        return s;
    }

    private static String required(Map<String, Object> meta, String key) {
        String s = text(meta, key);
        if (s == null) {
            throw new InvalidException("metadata '" + key + "' is missing");
        }
        return s;
    }

    private static long[] idList(Map<String, Object> meta, String key) {
        String text = required(meta, key);
        List<Long> ids;
        try {
            ids = JSON.readValue(text, new TypeReference<List<Long>>() { });
        } catch (JsonProcessingException e) {
            throw new InvalidException("metadata '" + key + "' is not a JSON array of integers");
        }
        if (ids == null || ids.stream().anyMatch(x -> x == null || x < 0)) {
            throw new InvalidException("metadata '" + key + "' must hold non-negative integers, got " + text);
        }
        return ids.stream().mapToLong(Long::longValue).toArray();
    }
}
