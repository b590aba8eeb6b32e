package lab.steering.service.models;

import ai.djl.Device;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import lab.steering.config.LabConfig;
import lab.steering.service.device.DevicePolicy;
import lab.steering.service.device.DeviceProbe;

/**
 * The device the models run on, as the app reports it (/api/models, /q/health) and as heavy requests are checked
 * against: on a GPU the budget of one request is also bounded by the GPU's free memory ({@link DevicePolicy}).
 */
@ApplicationScoped
public class DeviceStatus {

    private final Device device;
    private final String generationDtype;
    private final long configuredBytes;
    private final long reserveBytes;
    private final DeviceProbe probe;
    private volatile String name;

    @Inject
    DeviceStatus(ModelRegistry registry, LabConfig config) {
        this(registry.device(), DevicePolicy.name(registry.generationDtype()),
                config.jacobian().maxBytes().asLongValue(), config.gpu().memoryReserve().asLongValue(),
                DeviceProbe.CUDA);
    }

    /** For tests: any device, with a probe that makes up its memory. */
    public DeviceStatus(Device device, String generationDtype, long configuredBytes, long reserveBytes,
                        DeviceProbe probe) {
        this.device = device;
        this.generationDtype = generationDtype;
        this.configuredBytes = configuredBytes;
        this.reserveBytes = reserveBytes;
        this.probe = probe;
    }

    public Device device() {
        return device;
    }

    public boolean gpu() {
        return device.isGpu();
    }

    /** The dtype generation runs in: float32 on the CPU, LAB_GPU_DTYPE on a GPU. */
    public String generationDtype() {
        return generationDtype;
    }

    /** "cpu", or the GPU's name as the driver gives it (read once). */
    public String name() {
        if (!device.isGpu()) {
            return "cpu";
        }
        String n = name;
        if (n == null) {
            n = probe.name(device);
            name = n = n == null ? "unknown GPU" : n;
        }
        return n;
    }

    /** The GPU's memory now; null on the CPU. */
    public DevicePolicy.Memory memory() {
        return device.isGpu() ? probe.memory(device) : null;
    }

    /** What one heavy request may use now. */
    public DevicePolicy.Budget budget() {
        return DevicePolicy.budget(configuredBytes, memory(), reserveBytes, device.toString());
    }
}
