package lab.steering.steer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import lab.steering.model.ModelLoadException;
import lab.steering.model.SafetensorsReader;
import lab.steering.model.SafetensorsWriter;

/**
 * The one format of a stored operator: a safetensors file, byte for byte what the database holds and what export
 * returns. Tensors (all F32, row-major, per concept token i):
 * <ul>
 *   <li>full: {@code operator} [T_c, d, d], {@code operator[i][r][k] = d y_r / d x_{i,k}};</li>
 *   <li>lowrank: {@code u} [T_c, d, r], {@code s} [T_c, r], {@code v} [T_c, d, r] with
 *       {@code J_i ~= u_i diag(s_i) v_i^T}.</li>
 * </ul>
 * {@code __metadata__} (strings): format, version, model, fingerprint (of the model it was built on), layer, form,
 * rank (lowrank), dim, tokens, dtype, concept_prompt, concept_ids (a JSON array) and data_sha256 (SHA-256 of the
 * bytes after the header, so that a damaged body is refused). Nothing mutable (name, tags) is in the file.
 */
public final class OperatorFile {

    public static final String FORMAT = "steering-lab-operator";
    public static final String VERSION = "1";
    private static final ObjectMapper JSON = new ObjectMapper();

    private OperatorFile() {
    }

    /** A file that is not a complete, consistent operator; the message names the problem. */
    public static final class InvalidException extends RuntimeException {
        public InvalidException(String message) {
            super(message);
        }
    }

    /** A decoded file: the operator and what the metadata says about where it comes from. */
    public record Decoded(SteeringOperator operator, String fingerprint, String conceptPrompt,
                          Map<String, String> metadata) {
    }

    public static byte[] encode(SteeringOperator op, String fingerprint, String conceptPrompt) {
        SafetensorsWriter w = tensors(op);
        byte[] bare = write(w);
        long headerLen = ByteBuffer.wrap(bare, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String dataSha = sha256(bare, 8 + (int) headerLen, bare.length - 8 - (int) headerLen);
        w.metadata("format", FORMAT).metadata("version", VERSION).metadata("model", op.modelId())
                .metadata("fingerprint", fingerprint).metadata("layer", String.valueOf(op.layer()))
                .metadata("form", op.isLowRank() ? "lowrank" : "full");
        if (op.isLowRank()) {
            w.metadata("rank", String.valueOf(op.lowRank().rank()));
        }
        w.metadata("dim", String.valueOf(op.dim())).metadata("tokens", String.valueOf(op.tokens()))
                .metadata("dtype", "F32").metadata("concept_prompt", conceptPrompt)
                .metadata("concept_ids", Arrays.toString(op.conceptIds()).replace(" ", ""))
                .metadata("data_sha256", dataSha);
        return write(w);
    }

    private static SafetensorsWriter tensors(SteeringOperator op) {
        long t = op.tokens();
        long d = op.dim();
        SafetensorsWriter w = new SafetensorsWriter();
        if (op.isLowRank()) {
            long r = op.lowRank().rank();
            w.add("u", "F32", Injector.flatten(op.lowRank().u()), t, d, r);
            w.add("s", "F32", Injector.flatten(op.lowRank().s()), t, r);
            w.add("v", "F32", Injector.flatten(op.lowRank().v()), t, d, r);
        } else {
            w.add("operator", "F32", Injector.flatten(op.full()), t, d, d);
        }
        return w;
    }

    private static byte[] write(SafetensorsWriter w) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            w.write(out);
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Parses and checks a file on its own (not against a model): header, metadata, the exact tensor set, dtype,
     * shapes, length, data checksum and finite values.
     */
    public static Decoded decode(byte[] data) {
        SafetensorsReader r;
        try {
            r = SafetensorsReader.fromBytes(data, "the uploaded operator file"); // the name its errors give
        } catch (ModelLoadException e) {
            throw new InvalidException(e.getMessage());
        }
        try (r) {
            Map<String, String> meta = r.metadata();
            if (!FORMAT.equals(meta.get("format"))) {
                throw new InvalidException("not a steering operator file (metadata format is "
                        + (meta.get("format") == null ? "missing" : "'" + meta.get("format") + "'") + ", expected '"
                        + FORMAT + "')");
            }
            if (!VERSION.equals(meta.get("version"))) {
                throw new InvalidException("operator file version '" + meta.get("version") + "' is not supported "
                        + "(supported: " + VERSION + ")");
            }
            String form = required(meta, "form");
            int layer = positive(meta, "layer");
            int dim = positive(meta, "dim");
            int tokens = positive(meta, "tokens");
            if (!"F32".equals(meta.get("dtype"))) {
                throw new InvalidException("metadata dtype '" + meta.get("dtype") + "' is not supported (F32)");
            }
            long[] ids = conceptIds(required(meta, "concept_ids"), tokens);
            String fingerprint = required(meta, "fingerprint");
            String model = required(meta, "model");
            String prompt = required(meta, "concept_prompt");
            long tensorBytes = 0;
            for (String name : r.names()) {
                SafetensorsReader.TensorInfo info = r.info(name);
                if (!"F32".equals(info.dtype())) {
                    throw new InvalidException("tensor '" + name + "' has dtype " + info.dtype() + ", expected F32");
                }
                tensorBytes += info.length();
            }
            long headerLen = ByteBuffer.wrap(data, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            long body = data.length - 8 - headerLen;
            if (tensorBytes != body) {
                throw new InvalidException("the file has " + body + " bytes of tensor data but its tensors need "
                        + tensorBytes);
            }
            String sha = sha256(data, 8 + (int) headerLen, (int) body);
            if (!sha.equals(meta.get("data_sha256"))) {
                throw new InvalidException("tensor data is damaged: its SHA-256 is " + sha + ", the metadata says "
                        + meta.get("data_sha256"));
            }
            SteeringOperator op;
            if (form.equals("full")) {
                expectNames(r, Set.of("operator"));
                float[] all = floats(r, "operator", tokens, dim, dim);
                op = new SteeringOperator(model, ids, layer, dim, split(all, tokens), null);
            } else if (form.equals("lowrank")) {
                int rank = positive(meta, "rank");
                if (rank > dim) {
                    throw new InvalidException("rank " + rank + " exceeds dim " + dim);
                }
                expectNames(r, Set.of("u", "s", "v"));
                float[][] u = split(floats(r, "u", tokens, dim, rank), tokens);
                float[][] s = split(floats(r, "s", tokens, rank), tokens);
                float[][] v = split(floats(r, "v", tokens, dim, rank), tokens);
                op = new SteeringOperator(model, ids, layer, dim, null, new SteeringOperator.LowRankFactors(rank, u, s, v));
            } else {
                throw new InvalidException("metadata form '" + form + "' is not full or lowrank");
            }
            return new Decoded(op, fingerprint, prompt, meta);
        }
    }

    private static void expectNames(SafetensorsReader r, Set<String> want) {
        if (!r.names().equals(want)) {
            throw new InvalidException("tensors " + r.names() + " do not match the form (expected " + want + ")");
        }
    }

    private static float[] floats(SafetensorsReader r, String name, long... shape) {
        SafetensorsReader.TensorInfo info = r.info(name);
        if (!Arrays.equals(info.shape(), shape)) {
            throw new InvalidException("tensor '" + name + "' has shape " + Arrays.toString(info.shape())
                    + ", the metadata implies " + Arrays.toString(shape));
        }
        float[] f = r.readFloats(name);
        for (float x : f) {
            if (!Float.isFinite(x)) {
                throw new InvalidException("tensor '" + name + "' holds a non-finite value");
            }
        }
        return f;
    }

    private static float[][] split(float[] all, int tokens) {
        int per = all.length / tokens;
        float[][] out = new float[tokens][];
        for (int i = 0; i < tokens; i++) {
            out[i] = Arrays.copyOfRange(all, i * per, (i + 1) * per);
        }
        return out;
    }

    private static String required(Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null) {
            throw new InvalidException("metadata '" + key + "' is missing");
        }
        if (v.indexOf('\0') >= 0) { // stored as text, which PostgreSQL cannot hold with NUL
            throw new InvalidException("metadata '" + key + "' contains the NUL character (U+0000)");
        }
        return v;
    }

    private static int positive(Map<String, String> meta, String key) {
        String v = required(meta, key);
        try {
            int n = Integer.parseInt(v);
            if (n < 1) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new InvalidException("metadata '" + key + "' is '" + v + "', expected a positive integer");
        }
    }

    private static long[] conceptIds(String text, int tokens) {
        List<Long> ids;
        try {
            ids = JSON.readValue(text, new TypeReference<List<Long>>() { });
        } catch (JsonProcessingException e) {
            throw new InvalidException("metadata 'concept_ids' is not a JSON array of integers");
        }
        if (ids == null || ids.size() != tokens || ids.stream().anyMatch(x -> x == null || x < 0)) {
            throw new InvalidException("metadata 'concept_ids' must hold " + tokens + " non-negative ids, got "
                    + text);
        }
        return ids.stream().mapToLong(Long::longValue).toArray();
    }

    public static String sha256(byte[] data) {
        return sha256(data, 0, data.length);
    }

    static String sha256(byte[] data, int offset, int length) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(data, offset, length);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
