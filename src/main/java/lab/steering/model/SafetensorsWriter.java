package lab.steering.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a safetensors file: an 8-byte little-endian header length, a JSON header (padded with spaces to a
 * multiple of 8) and the tensors' bytes in order. Tensors are given as float32 and stored as F32, F16 or BF16
 * (round to nearest even), or given as float64 and stored as F64.
 */
public final class SafetensorsWriter {

    private record Entry(String name, String dtype, long[] shape, float[] f32, double[] f64) {
        long bytes() {
            long n = f64 != null ? f64.length : f32.length;
            return n * switch (dtype) {
                case "F64" -> 8;
                case "F32" -> 4;
                default -> 2;
            };
        }
    }

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter add(String name, String dtype, float[] data, long... shape) {
        if (!List.of("F32", "F16", "BF16").contains(dtype)) {
            throw new IllegalArgumentException("dtype " + dtype + " (float data: F32, F16 or BF16)");
        }
        check(name, data.length, shape);
        entries.add(new Entry(name, dtype, shape, data, null));
        return this;
    }

    public SafetensorsWriter addF64(String name, double[] data, long... shape) {
        check(name, data.length, shape);
        entries.add(new Entry(name, "F64", shape, null, data));
        return this;
    }

    /** String metadata stored under the header's {@code __metadata__}. */
    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    private static void check(String name, long n, long[] shape) {
        long want = 1;
        for (long s : shape) {
            want *= s;
        }
        if (want != n) {
            throw new IllegalArgumentException(name + ": " + n + " values for shape " + java.util.Arrays.toString(shape));
        }
    }

    public void write(Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            write(out);
        }
    }

    public void write(OutputStream out) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode t = header.putObject(e.name());
            t.put("dtype", e.dtype());
            var shape = t.putArray("shape");
            for (long s : e.shape()) {
                shape.add(s);
            }
            t.putArray("data_offsets").add(offset).add(offset + e.bytes());
            offset += e.bytes();
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
        out.write(len.array());
        out.write(h);
        for (int i = h.length; i < padded; i++) {
            out.write(' ');
        }
        for (Entry e : entries) {
            ByteBuffer b = ByteBuffer.allocate((int) e.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            switch (e.dtype()) {
                case "F64" -> {
                    for (double v : e.f64()) {
                        b.putDouble(v);
                    }
                }
                case "F32" -> {
                    for (float v : e.f32()) {
                        b.putFloat(v);
                    }
                }
                case "F16" -> {
                    for (float v : e.f32()) {
                        b.putShort(Half.fromFloat(v));
                    }
                }
                default -> {
                    for (float v : e.f32()) {
                        b.putShort(bf16(v));
                    }
                }
            }
            out.write(b.array());
        }
    }

    /** float -> bfloat16 bits, round to nearest even (NaN stays NaN). */
    public static short bf16(float v) {
        int x = Float.floatToRawIntBits(v);
        if ((x & 0x7fffffff) > 0x7f800000) {
            return (short) ((x >>> 16) | 0x40);
        }
        int rounding = 0x7fff + ((x >>> 16) & 1);
        return (short) ((x + rounding) >>> 16);
    }
}
