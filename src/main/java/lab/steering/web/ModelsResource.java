package lab.steering.web;

import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.Collection;
import java.util.List;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelConfig;
import lab.steering.service.DevicePolicy;
import lab.steering.service.ModelFingerprints;
import lab.steering.service.ModelRegistry;

/** GET /api/models: what is loaded, and which folders failed. */
@Path("/api/models")
@Produces(MediaType.APPLICATION_JSON)
public class ModelsResource {

    @Inject
    ModelRegistry registry;
    @Inject
    ModelFingerprints fingerprints;

    /**
     * One loaded model.
     *
     * @param dtype         the dtype generation and steering run in (float32 on the CPU; LAB_GPU_DTYPE on a GPU)
     * @param analysisDtype the dtype of the weights Jacobians and operators start from (float32; float64 on request)
     * @param device        cpu() or gpu(N), DJL's name of the device
     */
    public record ModelInfo(String id, String architecture, int layers, int hiddenSize, int vocabSize,
                            long parameters, String dtype, String analysisDtype, String device, int heads,
                            int kvHeads, int intermediateSize, int contextLength, boolean isDefault,
                            String fingerprint) {

        /** The device as a person reads it: "CPU", "GPU 0" (the API's {@code device} is DJL's "cpu()", "gpu(0)"). */
        public String deviceName() {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\w+)\\((\\d*)\\)").matcher(device);
            return m.matches() ? (m.group(1).toUpperCase(java.util.Locale.ROOT) + " " + m.group(2)).trim() : device;
        }
    }

    @GET
    public List<ModelInfo> list() {
        return registry.all().stream().map(m -> info(m, registry.defaultId(), fingerprints.of(m))).toList();
    }

    @GET
    @Path("/failures")
    public Collection<ModelRegistry.Failure> failures() {
        return registry.failures();
    }

    static ModelInfo info(LanguageModel m, String defaultId, String fingerprint) {
        ModelConfig c = m.config();
        return new ModelInfo(m.id(), c.modelType(), c.numLayers(), c.hiddenSize(), c.vocabSize(), c.parameterCount(),
                DevicePolicy.name(m.generationDataType()), DevicePolicy.name(m.dataType()), m.device().toString(),
                c.numHeads(), c.numKvHeads(),
                c.intermediateSize(), c.maxPositions(), m.id().equals(defaultId), fingerprint);
    }
}
