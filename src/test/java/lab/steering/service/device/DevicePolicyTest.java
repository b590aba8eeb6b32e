package lab.steering.service.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import lab.steering.service.models.DeviceStatus;
import org.junit.jupiter.api.Test;

/** The device rules with made-up GPU counts and memory figures (no GPU needed). */
class DevicePolicyTest {

    static final long MB = 1L << 20;
    static final long GB = 1L << 30;

    /** A GPU that is not there: fixed memory and name. */
    record FakeProbe(DevicePolicy.Memory mem, String gpuName) implements DeviceProbe {
        @Override
        public DevicePolicy.Memory memory(Device device) {
            return mem;
        }

        @Override
        public String name(Device device) {
            return gpuName;
        }
    }

    @Test
    void labDeviceChoosesByVisibleGpus() {
        assertEquals(Device.cpu(), DeviceSelector.select("auto", 0));
        assertEquals(Device.gpu(0), DeviceSelector.select("auto", 2));
        assertEquals(Device.gpu(0), DeviceSelector.select(null, 1));
        assertEquals(Device.cpu(), DeviceSelector.select("CPU", 4));
        assertEquals(Device.gpu(0), DeviceSelector.select("cuda", 1));
        assertEquals(Device.gpu(1), DeviceSelector.select("cuda:1", 2));
        IllegalStateException none = assertThrows(IllegalStateException.class, () -> DeviceSelector.select("cuda", 0));
        assertTrue(none.getMessage().contains("-Pgpu"), none.getMessage());
        assertThrows(IllegalStateException.class, () -> DeviceSelector.select("cuda:2", 2));
        assertThrows(IllegalStateException.class, () -> DeviceSelector.select("cuda:x", 2));
        assertThrows(IllegalStateException.class, () -> DeviceSelector.select("cuda:-1", 2));
        assertThrows(IllegalStateException.class, () -> DeviceSelector.select("tpu", 2));
    }

    @Test
    void generationDtypeIsTheGpuSettingOnAGpuAndFloat32OnTheCpu() {
        assertEquals(DataType.BFLOAT16, DevicePolicy.generationDtype("bf16", Device.gpu(0)));
        assertEquals(DataType.FLOAT16, DevicePolicy.generationDtype("fp16", Device.gpu(0)));
        assertEquals(DataType.FLOAT32, DevicePolicy.generationDtype("f32", Device.gpu(0)));
        assertEquals(DataType.FLOAT32, DevicePolicy.generationDtype("bf16", Device.cpu()));
        IllegalStateException bad = assertThrows(IllegalStateException.class,
                () -> DevicePolicy.generationDtype("int8", Device.cpu())); // a typo fails on the CPU too
        assertTrue(bad.getMessage().contains("LAB_GPU_DTYPE"), bad.getMessage());
        assertEquals("bfloat16", DevicePolicy.name(DataType.BFLOAT16));
        assertEquals("float32", DevicePolicy.name(DataType.FLOAT32));
    }

    @Test
    void cpuBudgetIsTheConfiguredLimit() {
        DevicePolicy.Budget b = DevicePolicy.budget(512 * MB, null, GB, "cpu()");
        assertEquals(512 * MB, b.limitBytes());
        assertEquals("lab.jacobian.max-bytes", b.limitedBy());
        assertNull(b.device());
        assertTrue(b.fits(512 * MB));
        assertFalse(b.fits(512 * MB + 1));
    }

    @Test
    void gpuBudgetIsFreeMemoryLessTheReserveWhenThatIsSmaller() {
        DevicePolicy.Memory roomy = new DevicePolicy.Memory(60 * GB, 80 * GB);
        DevicePolicy.Budget b = DevicePolicy.budget(8 * GB, roomy, GB, "gpu(0)");
        assertEquals(8 * GB, b.limitBytes());
        assertEquals("lab.jacobian.max-bytes", b.limitedBy());

        DevicePolicy.Memory tight = new DevicePolicy.Memory(3 * GB, 80 * GB);
        b = DevicePolicy.budget(8 * GB, tight, GB, "gpu(0)");
        assertEquals(2 * GB, b.limitBytes());
        assertTrue(b.limitedBy().contains("free memory of gpu(0)"), b.limitedBy());
        assertTrue(b.fits(2 * GB));
        assertFalse(b.fits(2 * GB + 1));

        DevicePolicy.Memory full = new DevicePolicy.Memory(512 * MB, 80 * GB);
        assertEquals(0, DevicePolicy.budget(8 * GB, full, GB, "gpu(0)").limitBytes());
    }

    @Test
    void deviceStatusReportsTheProbe() {
        DeviceStatus gpu = new DeviceStatus(Device.gpu(0), "bfloat16", 8 * GB, GB,
                new FakeProbe(new DevicePolicy.Memory(4 * GB, 80 * GB), "Fake H100"));
        assertTrue(gpu.gpu());
        assertEquals("Fake H100", gpu.name());
        assertEquals(3 * GB, gpu.budget().limitBytes());
        assertEquals(4 * GB, gpu.budget().device().freeBytes());

        DeviceStatus unknown = new DeviceStatus(Device.gpu(0), "bfloat16", 8 * GB, GB, new FakeProbe(null, null));
        assertEquals("unknown GPU", unknown.name());
        assertEquals(8 * GB, unknown.budget().limitBytes()); // driver silent: the configured limit alone

        DeviceStatus cpu = new DeviceStatus(Device.cpu(), "float32", 512 * MB, GB,
                new FakeProbe(new DevicePolicy.Memory(0, 0), "never asked"));
        assertEquals("cpu", cpu.name());
        assertNull(cpu.memory());
        assertEquals(512 * MB, cpu.budget().limitBytes());
    }
}
