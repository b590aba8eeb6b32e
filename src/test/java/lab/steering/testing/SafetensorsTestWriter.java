package lab.steering.testing;

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

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Writes a safetensors file (test utility; no DJL, no product classes).
 *
 * <p>Format: 8-byte little-endian unsigned header length N, then N bytes of UTF-8 JSON
 * {@code {"__metadata__": {...}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}},
 * then the raw little-endian tensor bytes; offsets are relative to the first data byte. The header is padded
 * with trailing spaces so the data starts at a multiple of 8 bytes (the format allows whitespace padding).
 *
 * <p>Values are given as doubles and rounded once, to nearest-even, to the file's dtype: F32, F16 or BF16.
 */
public final class SafetensorsTestWriter {

    private record Entry(String name, long[] shape, double[] values) {
    }

    private final String dtype;
    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** @param dtype "F32", "F16" or "BF16" */
    public SafetensorsTestWriter(String dtype) {
        bytesPerElement(dtype);
        this.dtype = dtype;
        metadata.put("format", "pt"); // what torch's save_pretrained writes
    }

    public SafetensorsTestWriter add(String name, long[] shape, double[] values) {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        if (n != values.length) {
            throw new IllegalArgumentException(name + ": shape holds " + n + " values, got " + values.length);
        }
        entries.add(new Entry(name, shape.clone(), values));
        return this;
    }

    /** Bytes of tensor data this writer will emit (the index's "total_size" counts these). */
    public long dataBytes() {
        long total = 0;
        for (Entry e : entries) {
            total += (long) e.values.length * bytesPerElement(dtype);
        }
        return total;
    }

    public List<String> names() {
        return entries.stream().map(Entry::name).toList();
    }

    public void write(Path file) throws IOException {
        int width = bytesPerElement(dtype);
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("__metadata__", metadata);
        long offset = 0;
        for (Entry e : entries) {
            long end = offset + (long) e.values.length * width;
            Map<String, Object> info = new LinkedHashMap<>();
            info.put("dtype", dtype);
            info.put("shape", e.shape);
            info.put("data_offsets", new long[] {offset, end});
            header.put(e.name, info);
            offset = end;
        }
        StringBuilder json = new StringBuilder(new ObjectMapper().writeValueAsString(header));
        while ((8 + json.toString().getBytes(StandardCharsets.UTF_8).length) % 8 != 0) {
            json.append(' ');
        }
        byte[] headerBytes = json.toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length).array());
            out.write(headerBytes);
            for (Entry e : entries) {
                ByteBuffer buf = ByteBuffer.allocate(e.values.length * width).order(ByteOrder.LITTLE_ENDIAN);
                for (double v : e.values) {
                    switch (dtype) {
                        case "F32" -> buf.putFloat((float) v); // Java's double->float cast rounds to nearest-even
                        case "F16" -> buf.putShort(toF16Bits(v));
                        case "BF16" -> buf.putShort(toBf16Bits(v));
                        default -> throw new IllegalStateException(dtype);
                    }
                }
                out.write(buf.array());
            }
        }
    }

    static int bytesPerElement(String dtype) {
        return switch (dtype) {
            case "F32" -> 4;
            case "F16", "BF16" -> 2;
            default -> throw new IllegalArgumentException("unsupported dtype " + dtype + " (F32, F16, BF16)");
        };
    }

    /** IEEE 754 binary16 bits of x, rounded once to nearest-even (overflow to infinity). */
    public static short toF16Bits(double x) {
        if (Double.isNaN(x)) {
            return (short) 0x7e00;
        }
        int sign = (Double.doubleToRawLongBits(x) < 0) ? 0x8000 : 0;
        double a = Math.abs(x);
        int bits;
        if (a < 0x1p-14) { // subnormal range: unit 2^-24; rounding up to 1024 gives the smallest normal, correctly
            bits = (int) Math.rint(a * 0x1p24);
        } else {
            int e = Math.getExponent(a); // a = m * 2^e, 1 <= m < 2 (a is finite or infinite here)
            double q = (e > 15) ? 2048 : Math.rint(Math.scalb(a, -e) * 1024); // in [1024, 2048]
            if (q == 2048) {
                q = 1024;
                e++;
            }
            bits = (e > 15) ? 0x7c00 : ((e + 15) << 10) | ((int) q - 1024);
        }
        return (short) (sign | bits);
    }

    /** bfloat16 bits of x (the top 16 bits of a float32), rounded once to nearest-even from the double. */
    public static short toBf16Bits(double x) {
        if (Double.isNaN(x)) {
            return (short) 0x7fc0;
        }
        int sign = (Double.doubleToRawLongBits(x) < 0) ? 0x8000 : 0;
        double a = Math.abs(x);
        int bits;
        if (a < 0x1p-126) { // subnormal range: unit 2^-133
            bits = (int) Math.rint(a * 0x1p133);
        } else {
            int e = Math.getExponent(a);
            double q = (e > 127) ? 256 : Math.rint(Math.scalb(a, -e) * 128); // in [128, 256]
            if (q == 256) {
                q = 128;
                e++;
            }
            bits = (e > 127) ? 0x7f80 : ((e + 127) << 7) | ((int) q - 128);
        }
        return (short) (sign | bits);
    }
}
