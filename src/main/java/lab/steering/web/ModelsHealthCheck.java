package lab.steering.web;

import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Readiness;
import lab.steering.service.ModelRegistry;

/** Ready when at least one model is loaded; reports the device and the folders that failed. */
@Readiness
public class ModelsHealthCheck implements HealthCheck {

    @Inject
    ModelRegistry registry;

    @Override
    public HealthCheckResponse call() {
        HealthCheckResponseBuilder b = HealthCheckResponse.named("models")
                .status(!registry.all().isEmpty())
                .withData("loaded", registry.all().size())
                .withData("default", String.valueOf(registry.defaultId()))
                .withData("device", registry.device().toString());
        registry.failures().forEach(f -> b.withData("failed:" + f.id(), f.error()));
        return b.build();
    }
}
