package lab.steering.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import java.nio.file.Path;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.service.device.DevicePolicy;
import lab.steering.service.device.DeviceProbe;
import lab.steering.service.models.DeviceStatus;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Needs a real GPU (build with -Pgpu; scripts/gpu-check.sh runs it); skipped without one. The reference is the
 * CPU in float32/float64: the GPU's float32 logits and Jacobians agree to float32 rounding, its float64 Jacobian to
 * float64 rounding, greedy tokens (plain and steered, float32) are the CPU's, and bfloat16 stays close.
 */
@Tag("gpu")
class GpuParityTest {

    /** Per test rather than in @BeforeAll, so that the reports count the skipped tests. */
    static void needsGpu() {
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "skipped: no GPU visible to DJL");
    }

    @Test
    void driverReportsNameAndMemory() {
        needsGpu();
        DeviceStatus s = new DeviceStatus(Device.gpu(0), "bfloat16", 8L << 30, 1L << 30, DeviceProbe.CUDA);
        assertTrue(s.name().startsWith("NVIDIA") || !s.name().equals("unknown GPU"), s.name());
        DevicePolicy.Memory mem = s.memory();
        assertNotNull(mem, "cudaMemGetInfo");
        assertTrue(mem.totalBytes() > 0 && mem.freeBytes() <= mem.totalBytes(), mem.toString());
        assertTrue(s.budget().limitBytes() <= 8L << 30);
    }

    @Test
    void stories260KMatchesTheCpu() {
        needsGpu();
        check(SharedModels.require(SharedModels.STORIES_TEXT));
    }

    @Test
    void defaultModelMatchesTheCpu() {
        needsGpu();
        Path p = Path.of("models", "steering-lab-base");
        Assumptions.assumeTrue(p.resolve("config.json").toFile().isFile(), "skipped: no default model");
        check(p);
    }

    static void check(Path folder) {
        Map<String, Object> r = GpuCheck.compare(folder, Device.gpu(0), DataType.BFLOAT16);
        System.out.println(r);
        assertEquals(null, r.get("error"));
        assertTrue((double) r.get("logitsFloat32RelMaxDiff") < 1e-4, "float32 logits " + r);
        assertTrue((double) r.get("logitsLowRelMaxDiff") < 5e-2, "bfloat16 logits " + r);
        assertTrue((double) r.get("jacobianFloat32RelDiff") < 1e-4, "float32 Jacobian " + r);
        assertTrue((double) r.get("jacobianFloat64RelDiff") < 1e-10, "float64 Jacobian " + r);
        int n = (int) r.get("tokens");
        assertEquals(n, r.get("plainTokensFloat32Match"), "plain float32 tokens " + r);
        assertEquals(n, r.get("steeredTokensFloat32Match"), "steered float32 tokens " + r);
    }
}
