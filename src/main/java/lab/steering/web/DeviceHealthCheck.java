package lab.steering.web;

import jakarta.inject.Inject;
import lab.steering.service.device.DevicePolicy;
import lab.steering.service.models.DeviceStatus;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Readiness;

/**
 * Always up: reports where the models run. {@code device} is "cpu" on the CPU; on a GPU it is DJL's name (gpu(N))
 * with the card's name, its memory (total and free, MB, as the driver reports them now) and generation's dtype.
 */
@Readiness
public class DeviceHealthCheck implements HealthCheck {

    @Inject
    DeviceStatus device;

    @Override
    public HealthCheckResponse call() {
        HealthCheckResponseBuilder b = HealthCheckResponse.named("device").up()
                .withData("device", device.gpu() ? device.device().toString() : "cpu")
                .withData("generationDtype", device.generationDtype());
        if (device.gpu()) {
            b.withData("gpu", device.name());
            DevicePolicy.Memory mem = device.memory();
            if (mem != null) {
                b.withData("memoryTotalMb", mem.totalBytes() >> 20).withData("memoryFreeMb", mem.freeBytes() >> 20);
            }
        }
        return b.build();
    }
}
