package lab.steering.web;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.Collection;
import java.util.List;
import lab.steering.model.ModelConfig;
import lab.steering.service.models.ModelFingerprints;
import lab.steering.service.models.ModelRegistry;

/**
 * The models as the API and the pages show them: their configs, states and memory, read from the registry without
 * loading anything.
 */
@ApplicationScoped
public class ModelViews {

    @Inject
    ModelRegistry registry;
    @Inject
    ModelFingerprints fingerprints;

    /**
     * One model.
     *
     * @param dtype         the dtype generation and steering run in (float32 on the CPU; LAB_GPU_DTYPE on a GPU)
     * @param analysisDtype the dtype of the weights Jacobians and operators start from (float32; float64 on request)
     * @param device        cpu() or gpu(N), DJL's name of the device
     * @param state         available (not in memory), loading, loaded, or failed (then {@code error} says why)
     * @param memoryMb      what it holds when loaded, else the estimate of what it will need (ModelMemory)
     * @param inUse         requests, jobs and tasks holding it now (a model in use is never unloaded)
     * @param fingerprint   of the folder's config and weights (ModelFingerprints); null for a failed model
     */
    public record ModelInfo(String id, String architecture, int layers, int hiddenSize, int vocabSize,
                            long parameters, String dtype, String analysisDtype, String device, int heads,
                            int kvHeads, int intermediateSize, int contextLength, boolean isDefault,
                            String fingerprint, String state, String error, long memoryMb, int inUse) {

        /** The device as a person reads it: "CPU", "GPU 0" (the API's {@code device} is DJL's "cpu()", "gpu(0)"). */
        public String deviceName() {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\w+)\\((\\d*)\\)").matcher(device);
            return m.matches() ? (m.group(1).toUpperCase(java.util.Locale.ROOT) + " " + m.group(2)).trim() : device;
        }

        /** Whether a request may name it (every state but failed). */
        public boolean usable() {
            return !"failed".equals(state);
        }
    }

    /** The memory budget of the loaded models and what they hold now (the /models page, health). */
    public record Memory(long budgetMb, String budgetSource, long usedMb, java.util.List<String> loaded) {
    }

    /** Every model whose config.json could be read, with its state. */
    public List<ModelInfo> list() {
        return registry.statuses().stream().filter(s -> s.config() != null).map(this::info).toList();
    }

    /** The models a form offers: all but the failed ones. */
    public List<ModelInfo> choices() {
        return list().stream().filter(ModelInfo::usable).toList();
    }

    /** The folders that failed, with the reasons. */
    public Collection<ModelRegistry.Failure> failures() {
        return registry.failures();
    }

    public Memory memory() {
        return new Memory(Math.round(registry.budget().megabytes()), registry.budget().source(),
                Math.round(registry.usedBytes() / 1048576.0), registry.loadedIds());
    }

    ModelInfo info(ModelRegistry.Status s) {
        ModelConfig c = s.config();
        String fingerprint = null;
        if (s.state() != ModelRegistry.State.FAILED) {
            try {
                fingerprint = fingerprints.of(s.id(), java.nio.file.Path.of(s.folder()));
            } catch (RuntimeException e) {
                fingerprint = null; // the weights cannot be read: the state or a later load says why
            }
        }
        return new ModelInfo(s.id(), c.modelType(), c.numLayers(), c.hiddenSize(), c.vocabSize(), c.parameterCount(),
                s.dtype(), s.analysisDtype(), s.device(), c.numHeads(), c.numKvHeads(), c.intermediateSize(),
                c.maxPositions(), s.isDefault(), fingerprint, s.state().apiName(), s.error(),
                Math.round(s.memoryBytes() / 1048576.0), s.inUse());
    }
}
