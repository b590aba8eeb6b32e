package lab.steering.web;

import jakarta.inject.Inject;
import lab.steering.service.models.ModelRegistry;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Readiness;

/**
 * Ready when at least one model can be used (scanned and not failed; models load on first use); reports the
 * default model's state, the loaded models, the memory budget, the device and the folders that failed.
 */
@Readiness
public class ModelsHealthCheck implements HealthCheck {

    @Inject
    ModelRegistry registry;

    @Override
    public HealthCheckResponse call() {
        String dflt = registry.defaultId();
        String defaultState = registry.statuses().stream().filter(s -> s.id().equals(dflt)).findFirst()
                .map(s -> s.state().apiName()).orElse("none");
        HealthCheckResponseBuilder b = HealthCheckResponse.named("models")
                .status(!registry.ids().isEmpty())
                .withData("models", registry.ids().size())
                .withData("loaded", registry.loadedIds().size())
                .withData("default", String.valueOf(dflt))
                .withData("defaultState", defaultState)
                .withData("memoryBudgetMb", Math.round(registry.budget().megabytes()))
                .withData("memoryUsedMb", Math.round(registry.usedBytes() / 1048576.0))
                .withData("device", registry.device().toString());
        registry.failures().forEach(f -> b.withData("failed:" + f.id(), f.error()));
        return b.build();
    }
}
