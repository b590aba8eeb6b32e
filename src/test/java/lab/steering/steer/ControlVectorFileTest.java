package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * GGUF control vectors: the app's files round-trip bit for bit, a file written by llama.cpp's own gguf package
 * (scripts/reference/gguf_control_vector_fixture.py) reads as its script says, and damaged or absurd files (every
 * truncation, random byte flips, huge counts, wrong types and shapes) are refused with
 * {@link ControlVectorFile.InvalidException} and nothing else.
 */
class ControlVectorFileTest {

    static final String FP = "cd".repeat(32);

    static ControlVector vector(int d, int... layers) {
        SplittableRandom r = new SplittableRandom(5);
        float[][] dirs = new float[layers.length][d];
        for (float[] v : dirs) {
            for (int i = 0; i < d; i++) {
                v[i] = (float) r.nextGaussian();
            }
        }
        dirs[0][0] = Float.MIN_VALUE; // a subnormal survives
        dirs[0][1] = -0.0f;
        return new ControlVector("m", d, layers, dirs);
    }

    static ControlVectorFile.Provenance provenance() {
        return new ControlVectorFile.Provenance("llama", FP, "The dog barked", "", new long[] {1, 5, 9}, new long[0]);
    }

    static int[] bits(float[] v) {
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Float.floatToRawIntBits(v[i]);
        }
        return out;
    }

    @Test
    void exportThenImportGivesTheSameVectorToTheLastBit() {
        ControlVector v = vector(16, 3, 4, 7);
        byte[] file = ControlVectorFile.encode(v, provenance());
        ControlVectorFile.Decoded d = ControlVectorFile.decode(file);
        assertTrue(d.ours());
        assertEquals("m", d.vector().modelId());
        assertArrayEquals(new int[] {3, 4, 7}, d.vector().layers());
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(bits(v.directions()[i]), bits(d.vector().directions()[i]), "layer " + i);
        }
        assertEquals(FP, d.provenance().fingerprint());
        assertEquals("The dog barked", d.provenance().conceptPrompt());
        assertArrayEquals(new long[] {1, 5, 9}, d.provenance().conceptIds());
        assertArrayEquals(file, ControlVectorFile.encode(d.vector(), d.provenance()), "same vector, same bytes");
    }

    @Test
    void tensorsAreNamedInLlamaCppsLayerNumbering() {
        byte[] file = ControlVectorFile.encode(vector(8, 3, 5), provenance());
        Gguf.File f = Gguf.parse(file);
        assertEquals(java.util.List.of("direction.1", "direction.3"), f.tensors().stream().map(Gguf.Tensor::name)
                .toList(), "app layer l is llama.cpp's direction.(l - 2)");
        assertEquals("controlvector", f.metadata().get("general.architecture"));
        assertEquals("llama", f.metadata().get("controlvector.model_hint"));
        assertEquals(2L, f.metadata().get("controlvector.layer_count"));
        assertEquals(Gguf.INT32, f.types().get("controlvector.layer_count"));
        for (Gguf.Tensor t : f.tensors()) {
            assertEquals(0, t.offset() % 32, "aligned to 32 bytes");
            assertArrayEquals(new long[] {8}, t.shape());
        }
        assertThrows(IllegalArgumentException.class, () -> ControlVectorFile.encode(vector(8, 2, 3), provenance()),
                "layer 2 (HF hidden_states[1], the output of layer 0) has no llama.cpp tensor");
    }

    static byte[] fixture() throws IOException {
        try (InputStream in = ControlVectorFileTest.class.getResourceAsStream("/gguf/reference-controlvector.gguf")) {
            return in.readAllBytes();
        }
    }

    @Test
    void aFileWrittenByLlamaCppsGgufPackageReadsAsItsScriptSays() throws IOException {
        ControlVectorFile.Decoded d = ControlVectorFile.decode(fixture());
        assertFalse(d.ours());
        assertNull(d.vector().modelId());
        assertEquals("llama", d.provenance().modelHint());
        assertEquals(64, d.vector().dim());
        assertArrayEquals(new int[] {3, 4, 5}, d.vector().layers(), "direction.1..3 are the app's layers 3..5");
        for (int n = 1; n <= 3; n++) {
            float[] want = new float[64];
            for (int i = 0; i < 64; i++) {
                want[i] = (float) ((((7 * i + 3 * n) % 13) - 6) / 8.0);
            }
            assertArrayEquals(bits(want), bits(d.vector().directions()[n - 1]), "direction." + n);
        }
        assertEquals(3L, d.metadata().get("controlvector.layer_count"));
    }

    /** Decodes or refuses with the file's own exception: any other exception (or an error) fails the test. */
    static boolean accepted(byte[] file, String what) {
        try {
            ControlVectorFile.decode(file);
            return true;
        } catch (ControlVectorFile.InvalidException e) {
            assertFalse(e.getMessage() == null || e.getMessage().isBlank(), what);
            return false;
        } catch (RuntimeException | OutOfMemoryError e) {
            fail(what + ": " + e, e);
            return false;
        }
    }

    @Test
    void everyTruncationIsRefused() throws IOException {
        for (byte[] file : new byte[][] {fixture(), ControlVectorFile.encode(vector(16, 3, 4), provenance())}) {
            for (int n = 0; n < file.length; n++) {
                byte[] cut = Arrays.copyOf(file, n);
                // the last tensor's padding is not data: cutting it leaves a complete file
                boolean paddingOnly = n >= lastDataEnd(file);
                assertEquals(paddingOnly, accepted(cut, "truncated to " + n + " bytes"), "truncated to " + n);
            }
        }
    }

    static long lastDataEnd(byte[] file) {
        Gguf.File f = Gguf.parse(file);
        return f.tensors().stream().mapToLong(t -> t.offset() + t.bytes()).max().orElseThrow();
    }

    @Test
    void flippedBytesAreRefusedOrReadWithoutAnyOtherError() throws IOException {
        SplittableRandom r = new SplittableRandom(11);
        int refused = 0;
        for (byte[] file : new byte[][] {fixture(), ControlVectorFile.encode(vector(16, 3, 4), provenance())}) {
            for (int trial = 0; trial < 3000; trial++) {
                byte[] bad = file.clone();
                int flips = 1 + r.nextInt(3);
                for (int k = 0; k < flips; k++) {
                    bad[r.nextInt(bad.length)] ^= (byte) (1 << r.nextInt(8));
                }
                refused += accepted(bad, "trial " + trial) ? 0 : 1;
            }
        }
        assertTrue(refused > 1000, "most flips in headers and metadata are refused: " + refused);
    }

    // ---- files made by hand to the specification (independent of Gguf.Writer) ----------------------------------

    /** Little-endian bytes built field by field. */
    static final class Bytes {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Bytes u32(long v) {
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
            return this;
        }

        Bytes u64(long v) {
            out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
            return this;
        }

        Bytes str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            out.writeBytes(b);
            return this;
        }

        Bytes f32(float... v) {
            for (float x : v) {
                u32(Float.floatToRawIntBits(x));
            }
            return this;
        }

        Bytes padTo(int alignment) {
            while (out.size() % alignment != 0) {
                out.write(0);
            }
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }

    /** A one-tensor control vector: header, the architecture key, one tensor info, data. */
    static byte[] handMade(long tensorCount, long kvCount, String arch, String name, long dims, long[] shape,
                           int type, long offset, float... data) {
        Bytes b = new Bytes().u32(0x46554747).u32(3).u64(tensorCount).u64(kvCount);
        b.str("general.architecture").u32(8).str(arch);
        b.str(name).u32(dims);
        for (long s : shape) {
            b.u64(s);
        }
        b.u32(type).u64(offset).padTo(32).f32(data);
        return b.bytes();
    }

    static byte[] good() {
        return handMade(1, 1, "controlvector", "direction.2", 1, new long[] {4}, 0, 0, 1, 2, 3, 4);
    }

    @Test
    void aHandMadeFileReadsAndItsDamagedVariantsAreRefusedByName() {
        ControlVectorFile.Decoded d = ControlVectorFile.decode(good());
        assertArrayEquals(new int[] {4}, d.vector().layers());
        assertArrayEquals(new float[] {1, 2, 3, 4}, d.vector().directions()[0]);
        record Case(String what, byte[] file, String message) {
        }
        long huge = Long.MAX_VALUE;
        for (Case c : new Case[] {
                new Case("bad magic", "GGML".getBytes(StandardCharsets.US_ASCII), "magic"),
                new Case("empty", new byte[0], "magic"),
                new Case("version 1", withU32(good(), 4, 1), "version 1"),
                new Case("big-endian", withU32(good(), 4, Integer.reverseBytes(3)), "big-endian"),
                new Case("huge tensor count", handMade(huge, 1, "controlvector", "direction.2", 1, new long[] {4}, 0, 0,
                        1, 2, 3, 4), "tensor_count"),
                new Case("tensor count 2^62", handMade(1L << 62, 1, "controlvector", "direction.2", 1, new long[] {4},
                        0, 0, 1, 2, 3, 4), "absurd"),
                new Case("huge kv count", handMade(1, 1L << 40, "controlvector", "direction.2", 1, new long[] {4}, 0,
                        0, 1, 2, 3, 4), "metadata_kv_count"),
                new Case("string length 2^63 - 1", withU64(good(), 24, huge), "bytes long"),
                new Case("value string past the end", withU64(good(), 24 + 8 + 20 + 4, 1000), "truncated"),
                new Case("huge width", handMade(1, 1, "controlvector", "direction.2", 1, new long[] {1L << 40}, 0, 0,
                        1, 2, 3, 4), "past the end"),
                new Case("overflowing shape", handMade(1, 1, "controlvector", "direction.2", 2,
                        new long[] {1L << 40, 1L << 40}, 0, 0, 1, 2, 3, 4), "overflow"),
                new Case("1000 dimensions", handMade(1, 1, "controlvector", "direction.2", 1000, new long[] {4}, 0, 0,
                        1, 2, 3, 4), "dimensions"),
                new Case("2-D", handMade(1, 1, "controlvector", "direction.2", 2, new long[] {2, 2}, 0, 0, 1, 2, 3, 4),
                        "one dimension"),
                new Case("F16", handMade(1, 1, "controlvector", "direction.2", 1, new long[] {4}, 1, 0, 1, 2),
                        "F32"),
                new Case("quantized type", handMade(1, 1, "controlvector", "direction.2", 1, new long[] {4}, 2, 0,
                        1, 2), "F32"),
                new Case("data past the end", handMade(1, 1, "controlvector", "direction.2", 1, new long[] {4}, 0, 0,
                        1, 2, 3), "past the end"),
                new Case("offset past the end", handMade(1, 1, "controlvector", "direction.2", 1, new long[] {4}, 0,
                        1L << 50, 1, 2, 3, 4), "past the end"),
                new Case("unaligned offset", handMade(1, 1, "controlvector", "direction.2", 1, new long[] {4}, 0, 4,
                        1, 2, 3, 4), "alignment"),
                new Case("direction.0", handMade(1, 1, "controlvector", "direction.0", 1, new long[] {4}, 0, 0,
                        1, 2, 3, 4), "direction.N"),
                new Case("other tensor", handMade(1, 1, "controlvector", "token_embd.weight", 1, new long[] {4}, 0, 0,
                        1, 2, 3, 4), "direction.N"),
                new Case("model file", handMade(1, 1, "llama", "direction.2", 1, new long[] {4}, 0, 0, 1, 2, 3, 4),
                        "architecture"),
                new Case("NaN", handMade(1, 1, "controlvector", "direction.2", 1, new long[] {4}, 0, 0, 1, Float.NaN,
                        3, 4), "non-finite"),
                new Case("no tensors", Arrays.copyOf(withU64(good(), 8, 0), 8 + 16 + 8 + 20 + 4 + 8 + 13),
                        "no direction tensors"),
                new Case("huge array", new Bytes().u32(0x46554747).u32(3).u64(0).u64(1).str("a").u32(9).u32(10)
                        .u64(1L << 60).bytes(), "elements"),
                new Case("nested arrays", nested(), "nests"),
        }) {
            ControlVectorFile.InvalidException e = assertThrows(ControlVectorFile.InvalidException.class,
                    () -> ControlVectorFile.decode(c.file()), c.what());
            assertTrue(e.getMessage().contains(c.message()), c.what() + ": " + e.getMessage());
        }
    }

    /** A metadata value nesting arrays ten deep. */
    static byte[] nested() {
        Bytes b = new Bytes().u32(0x46554747).u32(3).u64(0).u64(1).str("a").u32(9);
        for (int i = 0; i < 10; i++) {
            b.u32(9).u64(1);
        }
        return b.u32(4).u64(1).u32(7).bytes();
    }

    static byte[] withU32(byte[] file, int at, long v) {
        byte[] out = file.clone();
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putInt(at, (int) v);
        return out;
    }

    static byte[] withU64(byte[] file, int at, long v) {
        byte[] out = file.clone();
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
        return out;
    }
}
