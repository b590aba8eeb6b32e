package lab.steering.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Minimal safetensors reader for the test oracle: every tensor becomes a flat row-major double[].
 * Handles dtypes F64, F32, F16, BF16 and sharded folders ({@code model.safetensors.index.json}).
 * Independent of DJL and of the product's loader on purpose.
 */
public final class SafetensorsTestReader {

    /** A tensor: dtype as stored, shape, and its values converted exactly to double (row-major). */
    public record Tensor(String dtype, long[] shape, double[] data) {
        public int dim(int i) {
            return Math.toIntExact(shape[i]);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsTestReader() {
    }

    /** All tensors of a checkpoint folder: model.safetensors.index.json if present, else model.safetensors. */
    public static Map<String, Tensor> readFolder(Path folder) throws IOException {
        Path index = folder.resolve("model.safetensors.index.json");
        if (!Files.exists(index)) {
            return readFile(folder.resolve("model.safetensors"));
        }
        JsonNode weightMap = JSON.readTree(index.toFile()).get("weight_map");
        TreeSet<String> shards = new TreeSet<>();
        weightMap.fields().forEachRemaining(e -> shards.add(e.getValue().asText()));
        Map<String, Tensor> all = new LinkedHashMap<>();
        for (String shard : shards) {
            for (Map.Entry<String, Tensor> e : readFile(folder.resolve(shard)).entrySet()) {
                JsonNode owner = weightMap.get(e.getKey());
                if (owner == null || !owner.asText().equals(shard)) {
                    throw new IOException(e.getKey() + " found in " + shard + " but the index says " + owner);
                }
                all.put(e.getKey(), e.getValue());
            }
        }
        if (all.size() != weightMap.size()) {
            throw new IOException("index lists " + weightMap.size() + " tensors, shards hold " + all.size());
        }
        return all;
    }

    public static Map<String, Tensor> readFile(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen <= 0 || headerLen > 100_000_000L || 8 + headerLen > ch.size()) {
                throw new IOException(file + ": bad header length " + headerLen);
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            readFully(ch, headerBuf, 8);
            JsonNode header = JSON.readTree(new String(headerBuf.array(), StandardCharsets.UTF_8));
            long dataStart = 8 + headerLen;
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                JsonNode info = e.getValue();
                String dtype = info.get("dtype").asText();
                long[] shape = new long[info.get("shape").size()];
                long count = 1;
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = info.get("shape").get(i).asLong();
                    count *= shape[i];
                }
                long begin = info.get("data_offsets").get(0).asLong();
                long end = info.get("data_offsets").get(1).asLong();
                int width = switch (dtype) {
                    case "F64" -> 8;
                    case "F32" -> 4;
                    case "F16", "BF16" -> 2;
                    default -> throw new IOException(e.getKey() + ": unsupported dtype " + dtype);
                };
                if (end - begin != count * width || dataStart + end > ch.size() || begin < 0) {
                    throw new IOException(e.getKey() + ": data_offsets " + begin + ".." + end + " do not fit "
                            + count + " x " + dtype + " in " + file);
                }
                ByteBuffer raw = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + begin, end - begin)
                        .order(ByteOrder.LITTLE_ENDIAN);
                double[] data = new double[Math.toIntExact(count)];
                for (int i = 0; i < data.length; i++) {
                    data[i] = switch (dtype) {
                        case "F64" -> raw.getDouble();
                        case "F32" -> raw.getFloat();
                        case "F16" -> f16ToDouble(raw.getShort());
                        default -> bf16ToDouble(raw.getShort());
                    };
                }
                out.put(e.getKey(), new Tensor(dtype, shape, data));
            }
            return out;
        }
    }

    /** Exact value of IEEE 754 binary16 bits. */
    public static double f16ToDouble(short bits) {
        int h = bits & 0xffff;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        double v;
        if (exp == 0) {
            v = Math.scalb((double) mant, -24); // zero or subnormal
        } else if (exp == 31) {
            v = (mant == 0) ? Double.POSITIVE_INFINITY : Double.NaN;
        } else {
            v = Math.scalb((double) (1024 + mant), exp - 25);
        }
        return (h & 0x8000) != 0 ? -v : v;
    }

    /** Exact value of bfloat16 bits (the upper half of a float32). */
    public static double bf16ToDouble(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
            pos += n;
        }
    }
}
