package lab.steering.service.device;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import java.util.Locale;

/**
 * The device rules, free of any GPU so that they are unit-tested with made-up figures: the dtype generation runs in
 * (LAB_GPU_DTYPE, on a GPU only: the CPU build of PyTorch is kept in float32), and the memory a heavy request may
 * use (lab.jacobian.max-bytes, and on a GPU also its free memory less a reserve).
 */
public final class DevicePolicy {

    private DevicePolicy() {
    }

    /** A device's memory as the driver reports it. */
    public record Memory(long freeBytes, long totalBytes) {
    }

    /**
     * What one heavy request may use.
     *
     * @param limitBytes the smaller of the configured limit and the device's usable free memory
     * @param limitedBy  what set the limit: {@code lab.jacobian.max-bytes}, or the device's free memory
     * @param device     the device's memory when it was read (GPU only), else null
     */
    public record Budget(long limitBytes, String limitedBy, Memory device) {
        public boolean fits(long bytes) {
            return bytes <= limitBytes;
        }
    }

    /** LAB_GPU_DTYPE: bf16 (bfloat16), f16 (float16, half) or f32 (float32). */
    public static DataType parseGpuDtype(String setting) {
        String s = setting == null ? "bf16" : setting.trim().toLowerCase(Locale.ROOT);
        return switch (s) {
            case "bf16", "bfloat16" -> DataType.BFLOAT16;
            case "f16", "fp16", "float16", "half" -> DataType.FLOAT16;
            case "f32", "fp32", "float32", "float" -> DataType.FLOAT32;
            default -> throw new IllegalStateException("LAB_GPU_DTYPE='" + setting
                    + "' is not one of bf16, f16, f32");
        };
    }

    /** The dtype of generation on {@code device}: LAB_GPU_DTYPE on a GPU, float32 on the CPU. */
    public static DataType generationDtype(String gpuSetting, Device device) {
        DataType gpu = parseGpuDtype(gpuSetting); // checked on the CPU too, so a typo fails at start everywhere
        return device.isGpu() ? gpu : DataType.FLOAT32;
    }

    /**
     * The budget of one heavy request: the configured limit, lowered on a GPU to its free memory minus
     * {@code reserveBytes} (kept for generation and the allocator's fragmentation).
     *
     * @param deviceMemory null on the CPU (host memory is bounded by the configured limit alone)
     */
    public static Budget budget(long configuredBytes, Memory deviceMemory, long reserveBytes, String deviceName) {
        if (deviceMemory == null) {
            return new Budget(configuredBytes, "lab.jacobian.max-bytes", null);
        }
        long usable = Math.max(0, deviceMemory.freeBytes() - reserveBytes);
        if (usable < configuredBytes) {
            return new Budget(usable, "free memory of " + deviceName + " less lab.gpu.memory-reserve", deviceMemory);
        }
        return new Budget(configuredBytes, "lab.jacobian.max-bytes", deviceMemory);
    }

    /** Lower-case API name of a dtype: float32, float64, bfloat16, float16. */
    public static String name(DataType t) {
        return switch (t) {
            case BFLOAT16 -> "bfloat16";
            case FLOAT16 -> "float16";
            default -> t.name().toLowerCase(Locale.ROOT);
        };
    }
}
