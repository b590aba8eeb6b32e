package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The operator file: round trips bit-exactly, and every kind of damage is refused with a message. */
class OperatorFileTest {

    static final String FP = "ab".repeat(32);

    static SteeringOperator dense(int t, int d) {
        SplittableRandom r = new SplittableRandom(3);
        float[][] full = new float[t][d * d];
        for (float[] row : full) {
            for (int i = 0; i < row.length; i++) {
                row[i] = (float) r.nextGaussian();
            }
        }
        full[0][0] = Float.MIN_VALUE; // a subnormal survives too
        full[0][1] = -0.0f;
        long[] ids = new long[t];
        for (int i = 0; i < t; i++) {
            ids[i] = i + 1;
        }
        return new SteeringOperator("m", ids, 2, d, full, null);
    }

    @Test
    void fullFormRoundTripsBitExactly() {
        SteeringOperator op = dense(3, 8);
        byte[] bytes = OperatorFile.encode(op, FP, "The bridge is the Golden");
        OperatorFile.Decoded d = OperatorFile.decode(bytes);
        assertEquals(FP, d.fingerprint());
        assertEquals("The bridge is the Golden", d.conceptPrompt());
        assertEquals(2, d.operator().layer());
        assertArrayEquals(op.conceptIds(), d.operator().conceptIds());
        for (int i = 0; i < op.tokens(); i++) {
            assertTrue(Arrays.equals(bits(op.full()[i]), bits(d.operator().full()[i])), "token " + i);
        }
        assertArrayEquals(bytes, OperatorFile.encode(d.operator(), d.fingerprint(), d.conceptPrompt()));
    }

    @Test
    void lowRankFormRoundTripsBitExactly() {
        SteeringOperator lr = OperatorBuilder.lowRank(dense(2, 6), 3, 0);
        byte[] bytes = OperatorFile.encode(lr, FP, "c");
        SteeringOperator back = OperatorFile.decode(bytes).operator();
        assertEquals(3, back.lowRank().rank());
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(bits(lr.lowRank().u()[i]), bits(back.lowRank().u()[i]));
            assertArrayEquals(bits(lr.lowRank().s()[i]), bits(back.lowRank().s()[i]));
            assertArrayEquals(bits(lr.lowRank().v()[i]), bits(back.lowRank().v()[i]));
        }
        assertArrayEquals(bytes, OperatorFile.encode(back, FP, "c"));
    }

    static int[] bits(float[] f) {
        int[] out = new int[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = Float.floatToRawIntBits(f[i]);
        }
        return out;
    }

    static String refusal(byte[] bytes) {
        return assertThrows(OperatorFile.InvalidException.class, () -> OperatorFile.decode(bytes)).getMessage();
    }

    @Test
    void truncatedOrPaddedFilesAreRefused() {
        byte[] bytes = OperatorFile.encode(dense(2, 4), FP, "c");
        assertTrue(refusal(Arrays.copyOf(bytes, bytes.length - 1)).contains("lies outside the file"));
        assertTrue(refusal(Arrays.copyOf(bytes, 20)).contains("header length"));
        assertTrue(refusal(Arrays.copyOf(bytes, 5)).contains("too short"));
        assertTrue(refusal(new byte[0]).contains("too short"));
        assertTrue(refusal(Arrays.copyOf(bytes, bytes.length + 4)).contains("bytes of tensor data"));
    }

    @Test
    void damagedDataIsRefusedByItsChecksum() {
        byte[] bytes = OperatorFile.encode(dense(2, 4), FP, "c");
        bytes[bytes.length - 3] ^= 0x10;
        assertTrue(refusal(bytes).contains("tensor data is damaged"));
    }

    @Test
    void wrongMetadataShapesAndDtypesAreRefused() {
        byte[] bytes = OperatorFile.encode(dense(2, 4), FP, "c");
        assertTrue(refusal(editHeader(bytes, "\"form\":\"full\"", "\"form\":\"lowrank\"")).contains("'rank' is missing"));
        assertTrue(refusal(editHeader(bytes, "\"format\":\"steering-lab-operator\"", "\"format\":\"other-thing\""))
                .contains("not a steering operator file"));
        assertTrue(refusal(editHeader(bytes, "\"dim\":\"4\"", "\"dim\":\"8\"")).contains("has shape [2, 4, 4]"));
        assertTrue(refusal(editHeader(bytes, "\"tokens\":\"2\"", "\"tokens\":\"3\""))
                .contains("'concept_ids' must hold 3"));
        assertTrue(refusal(editHeader(bytes, "\"dtype\":\"F32\",\"shape\"", "\"dtype\":\"I32\",\"shape\""))
                .contains("dtype I32"));
        assertTrue(refusal(editHeader(bytes, "\"layer\":\"2\"", "\"layer\":\"x\"")).contains("positive integer"));
        assertTrue(refusal(editHeader(bytes, "{\"__metadata__\"", "[\"__metadata__\"")).contains("JSON"));
    }

    /** Replaces text in the header (re-padded to 8 bytes; data offsets are relative, so they stay valid). */
    static byte[] editHeader(byte[] file, String from, String to) {
        long len = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(file, 8, (int) len, StandardCharsets.UTF_8);
        assertTrue(header.contains(from), header);
        String trimmed = header.replace(from, to).stripTrailing();
        int padded = (trimmed.length() + 7) / 8 * 8;
        byte[] h = (trimmed + " ".repeat(padded - trimmed.length())).getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[8 + h.length + (file.length - 8 - (int) len)];
        ByteBuffer.wrap(out, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length);
        System.arraycopy(h, 0, out, 8, h.length);
        System.arraycopy(file, 8 + (int) len, out, 8 + h.length, file.length - 8 - (int) len);
        return out;
    }
}
