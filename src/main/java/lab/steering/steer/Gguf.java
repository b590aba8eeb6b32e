package lab.steering.steer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The GGUF container (ggml's docs/gguf.md, version 3; version 2 has the same layout), as much of it as a control
 * vector needs: typed key-value metadata, tensor infos, the aligned data section. Written from the specification.
 * <pre>
 * "GGUF" u32 version, u64 tensor_count, u64 kv_count        (little-endian)
 * kv_count x  { string key, u32 value_type, value }         string = u64 length + UTF-8 bytes (no NUL)
 * tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }   ne[0] innermost
 * padding to general.alignment (default 32), then the tensor data; each offset is relative to the data section's
 * start and a multiple of the alignment
 * </pre>
 * The reader works on bytes already in memory (an upload) and trusts no count: every length is checked against the
 * bytes left before anything is allocated for it, so a header that claims 2^60 tensors or a string of 2^63 bytes
 * is refused after reading a few bytes. Plain arrays; nothing here knows what a control vector is.
 */
public final class Gguf {

    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
    static final int VERSION = 3;
    static final int DEFAULT_ALIGNMENT = 32;
    /** ggml_type of float32 (the only type written; the reader records others for its caller to refuse). */
    public static final int GGML_F32 = 0;

    /** Metadata value types (gguf_type). */
    static final int UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
            STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12;

    /** Limits past which a file is refused as absurd rather than read (GGML_MAX_DIMS is 4, GGML_MAX_NAME 64). */
    static final int MAX_DIMS = 4;
    static final int MAX_NAME = 64;
    static final int MAX_KEY = 65535;
    static final int MAX_NESTING = 4;

    private Gguf() {
    }

    /** A file that is not well-formed GGUF; the message names the problem and where it is. */
    public static final class InvalidException extends RuntimeException {
        public InvalidException(String message) {
            super(message);
        }
    }

    /**
     * One tensor as its info describes it.
     *
     * @param shape  ne[0..n_dims-1] as stored (ne[0] innermost)
     * @param type   ggml_type
     * @param offset absolute offset of its data in the file
     * @param bytes  its data length, or -1 for a type whose size this reader does not know (quantized)
     */
    public record Tensor(String name, long[] shape, int type, long offset, long bytes) {
        public long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /**
     * A parsed file.
     *
     * @param metadata scalar and string values (arrays are checked and left out), in file order
     * @param types    the value type of every key, arrays included
     */
    public record File(int version, Map<String, Object> metadata, Map<String, Integer> types, List<Tensor> tensors,
                       byte[] data) {

        /** The tensor's data as float32 (its type must be F32 and its bytes within the file: checked by parse). */
        public float[] floats(Tensor t) {
            if (t.type() != GGML_F32) {
                throw new IllegalArgumentException(t.name() + " is not F32");
            }
            float[] out = new float[Math.toIntExact(t.elements())];
            ByteBuffer.wrap(data, (int) t.offset(), (int) t.bytes()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
                    .get(out);
            return out;
        }
    }

    // ---- reading -------------------------------------------------------------------------------------------------

    /** Parses and checks {@code data} (header, metadata, tensor infos, every tensor's data within the file). */
    public static File parse(byte[] data) {
        Cursor c = new Cursor(data);
        if (data.length < 4 || c.u32() != MAGIC) {
            throw new InvalidException("bad magic: a GGUF file starts with the bytes 'GGUF'");
        }
        long version = c.u32();
        if (version == Integer.reverseBytes(VERSION) || version == Integer.reverseBytes(2)) {
            throw new InvalidException("big-endian GGUF files are not supported");
        }
        if (version != 2 && version != 3) {
            throw new InvalidException("GGUF version " + version + " is not supported (2 and 3 are)");
        }
        long tensorCount = c.u64("tensor_count");
        long kvCount = c.u64("metadata_kv_count");
        // the smallest metadata entry is 13 bytes (empty key, type, one byte), the smallest tensor info 24
        if (kvCount < 0 || kvCount > c.remaining() / 13) {
            throw new InvalidException("metadata_kv_count " + Long.toUnsignedString(kvCount) + " is absurd for a file"
                    + " of " + data.length + " bytes");
        }
        if (tensorCount < 0 || tensorCount > c.remaining() / 24) {
            throw new InvalidException("tensor_count " + Long.toUnsignedString(tensorCount) + " is absurd for a file"
                    + " of " + data.length + " bytes");
        }
        Map<String, Object> meta = new LinkedHashMap<>();
        Map<String, Integer> types = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = c.string("metadata key " + i, MAX_KEY);
            if (types.containsKey(key)) {
                throw new InvalidException("metadata key '" + key + "' appears twice");
            }
            int type = (int) c.u32();
            types.put(key, type);
            Object v = c.value(type, key, 0);
            if (v != null) {
                meta.put(key, v);
            }
        }
        long alignment = DEFAULT_ALIGNMENT;
        if (types.containsKey("general.alignment")) {
            if (types.get("general.alignment") != UINT32) {
                throw new InvalidException("general.alignment must be a u32");
            }
            alignment = (Long) meta.get("general.alignment");
            if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
                throw new InvalidException("general.alignment " + alignment + " is not a power of two");
            }
        }
        List<String> names = new ArrayList<>();
        List<long[]> shapes = new ArrayList<>();
        List<Integer> kinds = new ArrayList<>();
        List<Long> offsets = new ArrayList<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = c.string("tensor name " + i, MAX_NAME);
            if (names.contains(name)) {
                throw new InvalidException("tensor '" + name + "' appears twice");
            }
            long dims = c.u32();
            if (dims < 1 || dims > MAX_DIMS) {
                throw new InvalidException("tensor '" + name + "' has " + dims + " dimensions (1.." + MAX_DIMS + ")");
            }
            long[] shape = new long[(int) dims];
            for (int d = 0; d < dims; d++) {
                shape[d] = c.u64("tensor '" + name + "' dimension " + d);
                if (shape[d] < 0) {
                    throw new InvalidException("tensor '" + name + "' dimension " + d + " is absurd");
                }
            }
            kinds.add((int) c.u32());
            long offset = c.u64("tensor '" + name + "' offset");
            if (offset < 0 || offset % alignment != 0) {
                throw new InvalidException("tensor '" + name + "' offset " + Long.toUnsignedString(offset)
                        + " is not a multiple of the alignment " + alignment);
            }
            names.add(name);
            shapes.add(shape);
            offsets.add(offset);
        }
        long start = (c.position() + alignment - 1) / alignment * alignment;
        if (tensorCount > 0 && start > data.length) {
            throw new InvalidException("truncated: the tensor data section would start at byte " + start
                    + ", past the end of the file (" + data.length + " bytes)");
        }
        List<Tensor> tensors = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            long[] shape = shapes.get(i);
            long elements = 1;
            for (long d : shape) {
                elements = multiply(elements, d, names.get(i));
            }
            int size = elementSize(kinds.get(i));
            long bytes = size < 0 ? -1 : multiply(elements, size, names.get(i));
            if (offsets.get(i) > data.length - start) {
                throw new InvalidException("tensor '" + names.get(i) + "' data starts at offset "
                        + offsets.get(i) + " of the data section, past the end of the file (" + data.length
                        + " bytes)");
            }
            long at = start + offsets.get(i);
            if (bytes >= 0 && bytes > data.length - at) {
                throw new InvalidException("tensor '" + names.get(i) + "' data (" + bytes + " bytes at " + at
                        + ") runs past the end of the file (" + data.length + " bytes)");
            }
            tensors.add(new Tensor(names.get(i), shape, kinds.get(i), at, bytes));
        }
        return new File((int) version, Collections.unmodifiableMap(meta), Collections.unmodifiableMap(types),
                List.copyOf(tensors), data);
    }

    private static long multiply(long a, long b, String tensor) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new InvalidException("tensor '" + tensor + "' has an absurd shape (its size overflows)");
        }
    }

    /** Bytes per element of the plain ggml types; -1 for block-quantized and unknown ones. */
    static int elementSize(int ggmlType) {
        return switch (ggmlType) {
            case 0 -> 4;        // F32
            case 1, 30 -> 2;    // F16, BF16
            case 24 -> 1;       // I8
            case 25 -> 2;       // I16
            case 26 -> 4;       // I32
            case 27, 28 -> 8;   // I64, F64
            default -> -1;
        };
    }

    /** Bounds-checked little-endian reads; every failure is an {@link InvalidException} naming the offset. */
    private static final class Cursor {
        private final ByteBuffer b;

        Cursor(byte[] data) {
            b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        }

        long remaining() {
            return b.remaining();
        }

        long position() {
            return b.position();
        }

        private void need(long n, String what) {
            if (n < 0 || n > b.remaining()) {
                throw new InvalidException("truncated: " + what + " needs " + (n < 0 ? Long.toUnsignedString(n) : n)
                        + " bytes at offset " + b.position() + ", " + b.remaining() + " left");
            }
        }

        long u32() {
            need(4, "a u32");
            return Integer.toUnsignedLong(b.getInt());
        }

        long u64(String what) {
            need(8, what);
            return b.getLong();
        }

        String string(String what, int max) {
            long n = u64(what + " (length)");
            if (n < 0 || n > max) {
                throw new InvalidException(what + " is " + Long.toUnsignedString(n) + " bytes long, at most " + max);
            }
            need(n, what);
            byte[] raw = new byte[(int) n];
            b.get(raw);
            try {
                CharBuffer chars = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw));
                return chars.toString();
            } catch (CharacterCodingException e) {
                throw new InvalidException(what + " is not UTF-8");
            }
        }

        /** A value of {@code type}; arrays are walked (checked) and give null. */
        Object value(int type, String key, int depth) {
            switch (type) {
                case UINT8, INT8, BOOL -> {
                    need(1, "'" + key + "'");
                    byte v = b.get();
                    return type == UINT8 ? (long) (v & 0xff) : type == BOOL ? (Object) (v != 0) : (long) v;
                }
                case UINT16, INT16 -> {
                    need(2, "'" + key + "'");
                    short v = b.getShort();
                    return type == UINT16 ? (long) (v & 0xffff) : (long) v;
                }
                case UINT32 -> {
                    return u32();
                }
                case INT32 -> {
                    need(4, "'" + key + "'");
                    return (long) b.getInt();
                }
                case FLOAT32 -> {
                    need(4, "'" + key + "'");
                    return (double) b.getFloat();
                }
                case UINT64, INT64 -> {
                    return u64("'" + key + "'"); // UINT64 above 2^63 reads negative; no key here needs one
                }
                case FLOAT64 -> {
                    need(8, "'" + key + "'");
                    return b.getDouble();
                }
                case STRING -> {
                    return string("metadata '" + key + "'", Integer.MAX_VALUE - 16);
                }
                case ARRAY -> {
                    if (depth >= MAX_NESTING) {
                        throw new InvalidException("metadata '" + key + "' nests arrays deeper than " + MAX_NESTING);
                    }
                    int elem = (int) u32();
                    long n = u64("'" + key + "' (array length)");
                    int min = minSize(elem, key);
                    if (n < 0 || n > b.remaining() / min) {
                        throw new InvalidException("metadata '" + key + "' claims " + Long.toUnsignedString(n)
                                + " elements, more than the " + b.remaining() + " bytes left can hold");
                    }
                    for (long i = 0; i < n; i++) {
                        value(elem, key, depth + 1);
                    }
                    return null;
                }
                default -> throw new InvalidException("metadata '" + key + "' has unknown value type " + type);
            }
        }

        private static int minSize(int type, String key) {
            return switch (type) {
                case UINT8, INT8, BOOL -> 1;
                case UINT16, INT16 -> 2;
                case UINT32, INT32, FLOAT32 -> 4;
                case UINT64, INT64, FLOAT64, STRING -> 8;
                case ARRAY -> 12;
                default -> throw new InvalidException("metadata '" + key + "' has unknown element type " + type);
            };
        }
    }

    // ---- writing -------------------------------------------------------------------------------------------------

    /** Builds a file: metadata in the order added (strings and i32/u32), then F32 tensors, aligned to 32 bytes. */
    public static final class Writer {
        private final ByteArrayOutputStream kv = new ByteArrayOutputStream();
        private int kvCount;
        private final List<String> names = new ArrayList<>();
        private final List<float[]> values = new ArrayList<>();
        private final List<long[]> shapes = new ArrayList<>();

        public Writer string(String key, String value) {
            key(key, STRING);
            putString(kv, value);
            return this;
        }

        public Writer int32(String key, int value) {
            key(key, INT32);
            kv.writeBytes(le(4).putInt(value).array());
            return this;
        }

        public Writer uint32(String key, long value) {
            key(key, UINT32);
            kv.writeBytes(le(4).putInt((int) value).array());
            return this;
        }

        private void key(String key, int type) {
            putString(kv, key);
            kv.writeBytes(le(4).putInt(type).array());
            kvCount++;
        }

        /** A float32 tensor; {@code shape} as ggml's ne (ne[0] innermost), its product the data's length. */
        public Writer f32(String name, float[] data, long... shape) {
            names.add(name);
            values.add(data);
            shapes.add(shape);
            return this;
        }

        public byte[] toBytes() {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes(le(24).putInt(MAGIC).putInt(VERSION).putLong(names.size()).putLong(kvCount).array());
            out.writeBytes(kv.toByteArray());
            long offset = 0;
            for (int i = 0; i < names.size(); i++) {
                putString(out, names.get(i));
                long[] shape = shapes.get(i);
                ByteBuffer info = le(4 + 8 * shape.length + 4 + 8).putInt(shape.length);
                for (long d : shape) {
                    info.putLong(d);
                }
                out.writeBytes(info.putInt(GGML_F32).putLong(offset).array());
                offset += padded(4L * values.get(i).length);
            }
            pad(out);
            for (float[] v : values) {
                ByteBuffer bytes = le(4 * v.length);
                bytes.asFloatBuffer().put(v);
                out.writeBytes(bytes.array());
                pad(out);
            }
            return out.toByteArray();
        }

        private static long padded(long n) {
            return (n + DEFAULT_ALIGNMENT - 1) / DEFAULT_ALIGNMENT * DEFAULT_ALIGNMENT;
        }

        private static void pad(ByteArrayOutputStream out) {
            out.writeBytes(new byte[(int) (padded(out.size()) - out.size())]);
        }

        private static void putString(ByteArrayOutputStream out, String s) {
            byte[] raw = s.getBytes(StandardCharsets.UTF_8);
            out.writeBytes(le(8).putLong(raw.length).array());
            out.writeBytes(raw);
        }

        private static ByteBuffer le(int n) {
            return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
        }
    }
}
