package lab.steering.service.device;

import ai.djl.Device;
import ai.djl.util.cuda.CudaUtils;
import com.sun.jna.Library;
import com.sun.jna.Native;
import java.lang.management.MemoryUsage;
import java.nio.charset.StandardCharsets;

/**
 * Reads what the driver says about a GPU: its memory and its name. The CUDA implementation is the only code here
 * that needs a GPU; everything that decides something from these figures is in {@link DevicePolicy}.
 */
public interface DeviceProbe {

    /** Free and total memory of {@code device}; null on the CPU or when the driver cannot tell. */
    DevicePolicy.Memory memory(Device device);

    /** The GPU's name (e.g. "NVIDIA H100 80GB HBM3"); null on the CPU or when the driver cannot tell. */
    String name(Device device);

    /** The CUDA runtime (memory, through DJL's CudaUtils) and driver (name, cuDeviceGetName) libraries. */
    DeviceProbe CUDA = new DeviceProbe() {
        @Override
        public DevicePolicy.Memory memory(Device device) {
            if (!device.isGpu() || !CudaUtils.hasCuda()) {
                return null;
            }
            try {
                MemoryUsage u = CudaUtils.getGpuMemory(device);
                return new DevicePolicy.Memory(u.getMax() - u.getCommitted(), u.getMax());
            } catch (RuntimeException | LinkageError e) {
                return null;
            }
        }

        @Override
        public String name(Device device) {
            if (!device.isGpu()) {
                return null;
            }
            try {
                CudaDriver lib = Native.load("cuda", CudaDriver.class);
                int[] handle = new int[1];
                byte[] name = new byte[256];
                if (lib.cuInit(0) != 0 || lib.cuDeviceGet(handle, device.getDeviceId()) != 0
                        || lib.cuDeviceGetName(name, name.length, handle[0]) != 0) {
                    return null;
                }
                int n = 0;
                while (n < name.length && name[n] != 0) {
                    n++;
                }
                return new String(name, 0, n, StandardCharsets.UTF_8);
            } catch (RuntimeException | LinkageError e) {
                return null;
            }
        }
    };

    /** The three calls of the CUDA driver API (libcuda) that give a device's name. */
    interface CudaDriver extends Library {
        int cuInit(int flags);

        int cuDeviceGet(int[] device, int ordinal);

        int cuDeviceGetName(byte[] name, int length, int device);
    }
}
