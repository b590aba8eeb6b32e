package lab.steering.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Reads tensors from a Hugging Face folder's {@code model.safetensors}, or from the shards listed in
 * {@code model.safetensors.index.json}. Plain Java, no tensor library: the header is parsed here and each
 * tensor's bytes are memory-mapped on demand and converted to float32 (F32, F16, BF16) or float64 (F64).
 */
public final class SafetensorsReader implements AutoCloseable {

    /** One tensor's place in a file. */
    public record TensorInfo(String name, String dtype, long[] shape, Path file, long offset, long length) {
        public long elements() {
            long n = 1;
            for (long s : shape) {
                n *= s;
            }
            return n;
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, Integer> DTYPE_BYTES = Map.of("F32", 4, "F16", 2, "BF16", 2, "F64", 8);

    private final Map<String, TensorInfo> tensors;
    private final Map<Path, FileChannel> channels = new HashMap<>();
    private ByteBuffer memory;                              // the whole file, for fromBytes
    private Map<String, String> metadata = Map.of();

    private SafetensorsReader(Map<String, TensorInfo> tensors) {
        this.tensors = tensors;
    }

    /** Opens the weights of a model folder: a single file or a sharded index. */
    public static SafetensorsReader open(Path folder) {
        Path single = folder.resolve("model.safetensors");
        Path index = folder.resolve("model.safetensors.index.json");
        Map<String, TensorInfo> all = new LinkedHashMap<>();
        if (Files.isRegularFile(single)) {
            all.putAll(readHeader(single));
        } else if (Files.isRegularFile(index)) {
            JsonNode map = weightMap(index);
            Map<String, Map<String, TensorInfo>> shards = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String shard = e.getValue().asText();
                Map<String, TensorInfo> header = shards.computeIfAbsent(shard,
                        s -> readHeader(shard(folder, index, s)));
                TensorInfo info = header.get(e.getKey());
                if (info == null) {
                    throw new ModelLoadException(folder.resolve(shard), "tensor '" + e.getKey()
                            + "' listed in the index is not in this shard");
                }
                all.put(e.getKey(), info);
            }
        } else {
            throw new ModelLoadException(single, "missing (nor is there a model.safetensors.index.json)");
        }
        return new SafetensorsReader(all);
    }

    /** Parses one file's header: 8-byte little-endian length, then a JSON object of tensors. */
    /** The {@code weight_map} object of a sharded checkpoint's index file (its tensor name -> shard file). */
    public static JsonNode weightMap(Path index) {
        JsonNode map;
        try {
            map = JSON.readTree(index.toFile()).get("weight_map");
        } catch (IOException e) {
            throw new ModelLoadException(index, "not valid JSON: " + e.getMessage());
        }
        if (map == null || !map.isObject()) {
            throw new ModelLoadException(index, "has no 'weight_map' object");
        }
        return map;
    }

    /** A shard the index names: inside the folder and present, else the index is at fault. */
    public static Path shard(Path folder, Path index, String name) {
        Path p = folder.resolve(name).normalize();
        if (!p.startsWith(folder.normalize()) || !Files.isRegularFile(p)) {
            throw new ModelLoadException(index, "names shard '" + name + "', which is missing");
        }
        return p;
    }

    static Map<String, TensorInfo> readHeader(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            if (size < 8 || ch.read(lenBuf, 0) != 8) {
                throw new ModelLoadException(file, "too short to be a safetensors file");
            }
            long headerLen = checkHeaderLength(file, lenBuf.flip().getLong(), size);
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            ch.read(header, 8);
            return parseHeader(file, size, header.array(), new LinkedHashMap<>());
        } catch (IOException e) {
            throw new ModelLoadException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    private static long checkHeaderLength(Path file, long headerLen, long size) {
        if (headerLen <= 1 || headerLen > 100_000_000 || 8 + headerLen > size) {
            throw new ModelLoadException(file, "bad safetensors header length " + headerLen);
        }
        return headerLen;
    }

    /**
     * Checks a header's JSON against a file of {@code size} bytes and returns its tensors; the string entries of
     * {@code __metadata__} go to {@code metadata}.
     */
    private static Map<String, TensorInfo> parseHeader(Path file, long size, byte[] headerBytes,
                                                       Map<String, String> metadata) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(headerBytes);
        } catch (IOException e) {
            throw new ModelLoadException(file, "header is not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw new ModelLoadException(file, "header is not a JSON object");
        }
        long dataStart = 8 + headerBytes.length;
        Map<String, TensorInfo> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                e.getValue().fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            JsonNode t = e.getValue();
            String dtype = t.path("dtype").asText();
            JsonNode shapeNode = t.path("shape");
            JsonNode offs = t.path("data_offsets");
            if (!shapeNode.isArray() || !offs.isArray() || offs.size() != 2) {
                throw new ModelLoadException(file, "tensor '" + e.getKey() + "' has a malformed header entry");
            }
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = shapeNode.get(i).asLong();
                if (shape[i] < 0) {
                    throw new ModelLoadException(file, "tensor '" + e.getKey() + "' has a negative dimension");
                }
            }
            long begin = offs.get(0).asLong();
            long end = offs.get(1).asLong();
            TensorInfo info = new TensorInfo(e.getKey(), dtype, shape, file, dataStart + begin, end - begin);
            Integer width = DTYPE_BYTES.get(dtype);
            if (width != null && info.elements() * width != info.length()) {
                throw new ModelLoadException(file, "tensor '" + e.getKey() + "' has " + info.length()
                        + " bytes but shape " + Arrays.toString(shape) + " of " + dtype + " needs "
                        + info.elements() * width);
            }
            if (begin < 0 || end < begin || dataStart + end > size) {
                throw new ModelLoadException(file, "tensor '" + e.getKey() + "' lies outside the file");
            }
            out.put(e.getKey(), info);
        }
        return out;
    }

    /**
     * Reads a single safetensors file held in memory (an uploaded or stored file); {@code label} names it in
     * errors. Unlike a model folder's files, the header's {@code __metadata__} is kept ({@link #metadata()}).
     */
    public static SafetensorsReader fromBytes(byte[] data, String label) {
        Path file = Path.of(label);
        if (data.length < 8) {
            throw new ModelLoadException(file, "too short to be a safetensors file");
        }
        ByteBuffer all = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        long headerLen = checkHeaderLength(file, all.getLong(0), data.length);
        Map<String, String> metadata = new LinkedHashMap<>();
        try {
            Map<String, TensorInfo> tensors = parseHeader(file, data.length,
                    Arrays.copyOfRange(data, 8, 8 + (int) headerLen), metadata);
            SafetensorsReader r = new SafetensorsReader(tensors);
            r.memory = all;
            r.metadata = Collections.unmodifiableMap(metadata);
            return r;
        } catch (IOException e) {
            throw new ModelLoadException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    /** The header's {@code __metadata__} strings ({@link #fromBytes} only; empty for model folders). */
    public Map<String, String> metadata() {
        return metadata;
    }

    public Set<String> names() {
        return Collections.unmodifiableSet(tensors.keySet());
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The tensor's header entry, or an error naming the missing tensor. */
    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new ModelLoadException(anyFile(), "tensor '" + name + "' is missing");
        }
        return info;
    }

    private Path anyFile() {
        return tensors.values().stream().map(TensorInfo::file).findFirst().orElse(Path.of("model.safetensors"));
    }

    /**
     * The tensor as native-order float32 in a direct buffer (ready for a tensor library), after checking that
     * its shape is {@code expected}.
     */
    public FloatBuffer readFloat32(String name, long... expected) {
        TensorInfo info = checked(name, expected);
        if (info.elements() > Integer.MAX_VALUE / 4) {
            throw new ModelLoadException(info.file(), "tensor '" + name + "' is too large (" + info.elements()
                    + " elements) for one float32 buffer");
        }
        ByteBuffer src = map(info);
        int n = (int) info.elements();
        FloatBuffer dst = ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
        switch (info.dtype()) {
            case "F32" -> dst.put(src.asFloatBuffer());
            case "F64" -> {
                for (int i = 0; i < n; i++) {
                    dst.put(i, (float) src.getDouble(i * 8));
                }
            }
            case "BF16" -> {
                for (int i = 0; i < n; i++) {
                    dst.put(i, Float.intBitsToFloat((src.getShort(i * 2) & 0xffff) << 16));
                }
            }
            case "F16" -> {
                for (int i = 0; i < n; i++) {
                    dst.put(i, Half.toFloat(src.getShort(i * 2)));
                }
            }
            default -> throw new ModelLoadException(info.file(), "tensor '" + name + "' has dtype " + info.dtype()
                    + " (supported: F32, F16, BF16, F64)");
        }
        dst.rewind();
        return dst;
    }

    /**
     * The tensor's stored little-endian bytes (memory-mapped, read-only; {@code info(name).dtype()} says how to read
     * them), after checking that its shape is {@code expected}.
     */
    public ByteBuffer bytes(String name, long... expected) {
        return map(checked(name, expected));
    }

    private TensorInfo checked(String name, long... expected) {
        TensorInfo info = info(name);
        if (!Arrays.equals(info.shape(), expected)) {
            throw new ModelLoadException(info.file(), "tensor '" + name + "' has shape "
                    + Arrays.toString(info.shape()) + ", expected " + Arrays.toString(expected));
        }
        return info;
    }

    /** The tensor as a float32 array (tests, small tensors). */
    public float[] readFloats(String name) {
        TensorInfo info = info(name);
        FloatBuffer b = readFloat32(name, info.shape());
        float[] out = new float[b.remaining()];
        b.get(out);
        return out;
    }

    /** The tensor as a float64 array: exact for every stored dtype (F64 included), for tests and small tensors. */
    public double[] readDoubles(String name) {
        TensorInfo info = info(name);
        if ("F64".equals(info.dtype())) {
            if (info.elements() > Integer.MAX_VALUE / 8) {
                throw new ModelLoadException(info.file(), "tensor '" + name + "' is too large for one array");
            }
            double[] out = new double[(int) info.elements()];
            map(info).asDoubleBuffer().get(out);
            return out;
        }
        float[] f = readFloats(name);
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }

    /** The string metadata of one file's header ({@code __metadata__}), empty when there is none. */
    public static Map<String, String> metadata(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            if (ch.size() < 8 || ch.read(lenBuf, 0) != 8) {
                throw new ModelLoadException(file, "too short to be a safetensors file");
            }
            long headerLen = lenBuf.flip().getLong();
            if (headerLen <= 1 || headerLen > 100_000_000 || 8 + headerLen > ch.size()) {
                throw new ModelLoadException(file, "bad safetensors header length " + headerLen);
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            ch.read(header, 8);
            JsonNode meta = JSON.readTree(header.array()).path("__metadata__");
            Map<String, String> out = new LinkedHashMap<>();
            meta.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
            return out;
        } catch (IOException e) {
            throw new ModelLoadException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    private ByteBuffer map(TensorInfo info) {
        if (memory != null) {
            return memory.slice((int) info.offset(), (int) info.length()).order(ByteOrder.LITTLE_ENDIAN);
        }
        try {
            FileChannel ch = channels.get(info.file());
            if (ch == null) {
                ch = FileChannel.open(info.file(), StandardOpenOption.READ);
                channels.put(info.file(), ch);
            }
            return ch.map(FileChannel.MapMode.READ_ONLY, info.offset(), info.length()).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new ModelLoadException(info.file(), "cannot map tensor '" + info.name() + "': " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        for (FileChannel ch : channels.values()) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // closing a read-only channel: nothing to recover
            }
        }
        channels.clear();
    }
}
