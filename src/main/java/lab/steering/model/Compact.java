package lab.steering.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.util.stream.IntStream;

/**
 * Weight matrices kept in the two bytes per element of their checkpoint (bfloat16, float16) and widened to the
 * dtype of the computation where they are used ({@link WeightStorage#COMPACT}). DJL's CPU build runs float16 arrays
 * but crashes on bfloat16 ones, so a float16 matrix is a float16 array that PyTorch widens, and a bfloat16 one is its
 * stored bytes, a uint8 array (..., 2), widened here. Widening either to float32 or float64 is exact: a widened
 * matrix holds the very numbers of the float32 copy a {@link WeightStorage#FLOAT32} load makes.
 */
final class Compact {

    private static final int PAIRS_PER_PART = 1 << 15;  // elements widened per task: 64 K, 256 KB of float32
    private static final int PARALLEL_FROM = 1 << 20;   // elements from which the widening is split over cores
    private static final ThreadLocal<int[]> PAIRS = ThreadLocal.withInitial(() -> new int[PAIRS_PER_PART]);
    private static final ThreadLocal<int[]> WIDE = ThreadLocal.withInitial(() -> new int[2 * PAIRS_PER_PART]);

    private Compact() {
    }

    /** Whether a tensor stored in {@code dtype} (the safetensors name) is kept compactly. */
    static boolean keeps(String dtype) {
        return dtype.equals("BF16") || dtype.equals("F16");
    }

    /**
     * The tensor as stored, owned by {@code m}: a float16 array of {@code shape}, or the bytes of a bfloat16 one,
     * uint8 (shape..., 2).
     */
    static NDArray read(SafetensorsReader r, String name, long[] shape, NDManager m) {
        boolean f16 = r.info(name).dtype().equals("F16");
        NDArray a = m.create(f16 ? new Shape(shape) : new Shape(shape).add(2), f16 ? DataType.FLOAT16 : DataType.UINT8);
        a.toByteBuffer(true).put(r.bytes(name, shape));
        a.setName(name);
        return a;
    }

    /** {@code a}'s shape as the weight it holds (a bfloat16 array's byte axis left out). */
    static Shape shape(NDArray a) {
        Shape s = a.getShape();
        return a.getDataType() == DataType.UINT8 ? s.slice(0, s.dimension() - 1) : s;
    }

    /** {@code a} widened to {@code dtype}, owned by {@code m}. */
    static NDArray widen(NDArray a, NDManager m, DataType dtype) {
        NDArray out;
        if (a.getDataType() == DataType.UINT8) {
            out = widenBf16(a, 0, shape(a), m, dtype);
        } else {
            out = a.toType(dtype, false);
            out.attach(m);
        }
        out.setName(a.getName());
        return out;
    }

    /** Rows {@code [from, to)} of a compact (rows, cols) matrix, widened to {@code dtype} and owned by {@code m}. */
    static NDArray rows(NDArray a, long from, long to, NDManager m, DataType dtype) {
        long cols = shape(a).get(1);
        if (a.getDataType() == DataType.UINT8) {
            return widenBf16(a, from * cols, new Shape(to - from, cols), m, dtype);
        }
        try (NDArray part = a.get("{}:{}", from, to)) {
            NDArray out = part.toType(dtype, false);
            out.attach(m);
            return out;
        }
    }

    /** The elements {@code first ..} of a bfloat16 array's bytes, {@code shape} of them, widened. */
    private static NDArray widenBf16(NDArray bytes, long first, Shape shape, NDManager m, DataType dtype) {
        NDArray wide = m.create(shape, DataType.FLOAT32);
        bf16ToFloat32(bytes.toByteBuffer(true), first, wide.toByteBuffer(true));
        if (dtype == DataType.FLOAT32) {
            return wide;
        }
        NDArray out = wide.toType(dtype, false);
        wide.close();
        return out;
    }

    /**
     * Widens bfloat16 elements {@code first ..} of {@code src} into all of {@code dst} (float32): a bfloat16 is the
     * upper half of a float32. Two elements at a time, read as one little-endian int.
     */
    static void bf16ToFloat32(ByteBuffer src, long first, ByteBuffer dst) {
        ByteBuffer in = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        IntBuffer out = dst.duplicate().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
        int n = out.remaining();
        int head = (int) (first & 1); // an odd first element alone, then whole pairs
        if (head == 1 && n > 0) {
            out.put(0, in.getShort((int) first * 2) << 16);
        }
        int pairs = (n - head) / 2;
        int firstPair = (int) ((first + head) / 2);
        IntBuffer inPairs = in.asIntBuffer();
        int parts = (pairs + PAIRS_PER_PART - 1) / PAIRS_PER_PART;
        IntStream range = IntStream.range(0, parts);
        (n >= PARALLEL_FROM ? range.parallel() : range).forEach(p -> {
            int[] packed = PAIRS.get();
            int[] wide = WIDE.get();
            int from = p * PAIRS_PER_PART;
            int len = Math.min(PAIRS_PER_PART, pairs - from);
            inPairs.get(firstPair + from, packed, 0, len);
            for (int i = 0; i < len; i++) {
                int v = packed[i];
                wide[2 * i] = v << 16;
                wide[2 * i + 1] = v & 0xffff0000;
            }
            out.put(head + 2 * from, wide, 0, 2 * len);
        });
        if ((n - head) % 2 == 1) {
            out.put(n - 1, in.getShort((int) (first + n - 1) * 2) << 16);
        }
    }
}
