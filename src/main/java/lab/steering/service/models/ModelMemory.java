package lab.steering.service.models;

import ai.djl.ndarray.types.DataType;
import java.lang.management.ManagementFactory;
import java.util.Locale;
import lab.steering.model.ModelFolder;
import lab.steering.model.WeightStorage;

/**
 * The memory of loaded models: what one model needs, and the budget all loaded models share
 * ({@code lab.models.memory}, LAB_MODEL_MEMORY). Pure arithmetic, apart from reading the machine's figures.
 * <p>
 * A model's need is its weights in every dtype it is held in (parameters x bytes per element: float32 for the
 * copy Jacobians and operators start from, or the checkpoint's own two bytes where {@link WeightStorage#COMPACT}
 * keeps bfloat16 or float16 matrices so; plus generation's copy when its dtype differs, as bfloat16 on a GPU;
 * a float64 copy made later for exact Jacobians counts once it exists), plus {@link #MARGIN} of that and
 * {@link #FIXED_BYTES}: the margin covers the load's staging copy of a tensor (read from the file into a direct
 * buffer, then copied by DJL), the tokenizer, the batched decoder's KV cache and the analysis caches.
 * <p>
 * The default budget: on the CPU the smaller of half the physical memory and three quarters of the JVM's direct
 * memory limit ({@code -XX:MaxDirectMemorySize}, by default the heap's maximum), because DJL keeps CPU tensors made
 * from Java buffers in direct memory, and a model beyond that limit fails with "Cannot reserve direct buffer
 * memory"; on a GPU 80 % of its total memory (when the driver tells it; else the CPU rule).
 */
public final class ModelMemory {

    /** The share of the weights added for everything else a loaded model holds. */
    public static final double MARGIN = 0.2;
    /** Added to every model's need (tokenizer, decoder thread, small caches). */
    public static final long FIXED_BYTES = 8L << 20;

    private ModelMemory() {
    }

    /**
     * Bytes of the weights of {@code folder} loaded with {@code storage} (float32 computation) and, when it is not
     * float32, {@code generation}'s copy.
     */
    public static long weightBytes(ModelFolder folder, WeightStorage storage, DataType generation) {
        long bytes = storage.bytes(folder);
        if (generation != DataType.FLOAT32) {
            bytes += folder.config().parameterCount() * generation.getNumOfBytes();
        }
        return bytes;
    }

    /** What a model holding {@code weightBytes} of weights needs in all (see the class comment). */
    public static long need(long weightBytes) {
        return weightBytes + (long) Math.ceil(weightBytes * MARGIN) + FIXED_BYTES;
    }

    /**
     * The budget and where it came from.
     *
     * @param source "LAB_MODEL_MEMORY", or how the default was derived
     */
    public record Budget(long bytes, String source) {
        public double megabytes() {
            return mb(bytes);
        }
    }

    /** The default budget from the machine's figures (see the class comment); {@code gpuTotal} null on the CPU. */
    public static Budget defaultBudget(long physicalBytes, long maxDirectBytes, Long gpuTotalBytes) {
        if (gpuTotalBytes != null && gpuTotalBytes > 0) {
            return new Budget(gpuTotalBytes / 5 * 4, String.format(Locale.ROOT,
                    "default: 80%% of the GPU's %.0f MB; LAB_MODEL_MEMORY sets it", mb(gpuTotalBytes)));
        }
        long half = physicalBytes / 2;
        long direct = maxDirectBytes / 4 * 3;
        return half <= direct
                ? new Budget(half, String.format(Locale.ROOT, "default: half of the physical memory of %.0f MB;"
                + " LAB_MODEL_MEMORY sets it", mb(physicalBytes)))
                : new Budget(direct, String.format(Locale.ROOT, "default: 3/4 of the JVM's direct memory limit of"
                + " %.0f MB (-XX:MaxDirectMemorySize, else -Xmx); LAB_MODEL_MEMORY sets it", mb(maxDirectBytes)));
    }

    /** The machine's physical memory (the container's limit where there is one). */
    public static long physicalBytes() {
        try {
            return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                    .getTotalMemorySize();
        } catch (RuntimeException | LinkageError e) {
            return Runtime.getRuntime().maxMemory() * 4;
        }
    }

    /** The JVM's limit on direct buffers: -XX:MaxDirectMemorySize, or the heap's maximum when it is not set. */
    public static long maxDirectBytes() {
        try {
            com.sun.management.HotSpotDiagnosticMXBean hs =
                    ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
            long v = Long.parseLong(hs.getVMOption("MaxDirectMemorySize").getValue());
            if (v > 0) {
                return v;
            }
        } catch (RuntimeException | LinkageError e) {
            // not HotSpot: the JDK's default rule below
        }
        return Runtime.getRuntime().maxMemory();
    }

    static double mb(long bytes) {
        return bytes / 1048576.0;
    }
}
