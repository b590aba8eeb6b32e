package lab.steering.service;

import ai.djl.Device;
import io.quarkus.runtime.Startup;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Stream;
import lab.steering.config.LabConfig;
import lab.steering.model.LanguageModel;
import org.jboss.logging.Logger;

/**
 * The models found at start: every sub-folder of the project's models/ and of LAB_MODELS_DIR is one model, its id
 * the folder name. A folder that fails to load is reported (log, health, /api/models/failures) and skipped; the
 * app starts with the others.
 */
@Startup
@ApplicationScoped
public class ModelRegistry {

    private static final Logger LOG = Logger.getLogger(ModelRegistry.class);

    /** A folder that could not be loaded. */
    public record Failure(String id, String folder, String error) {
    }

    private final Map<String, LanguageModel> models = new TreeMap<>();
    private final Map<String, Failure> failures = new LinkedHashMap<>();
    private final Device device;
    private final ai.djl.ndarray.types.DataType generationDtype;
    private final String defaultId;

    ModelRegistry(LabConfig config) {
        System.setProperty("ai.djl.offline", "true");
        // read by DJL's PyTorch engine when it starts, which is below (DeviceSelector)
        config.threads().ifPresent(n -> System.setProperty("ai.djl.pytorch.num_threads", String.valueOf(n)));
        this.device = DeviceSelector.select(config.device());
        this.generationDtype = DevicePolicy.generationDtype(config.gpu().dtype(), device);
        List<Path> dirs = folders(config);
        for (Path dir : dirs) {
            loadAll(dir);
        }
        String wanted = config.defaultModel().filter(s -> !s.isBlank()).orElse(null);
        if (wanted != null && !models.containsKey(wanted)) {
            LOG.warnf("LAB_DEFAULT_MODEL=%s is not among the loaded models %s", wanted, models.keySet());
            wanted = null;
        }
        if (wanted == null) { // the project's own models come first, then the others by name
            Path own = dirs.get(0).toAbsolutePath().normalize();
            wanted = models.values().stream().filter(m -> m.folder().normalize().startsWith(own))
                    .map(LanguageModel::id).findFirst()
                    .orElse(models.keySet().stream().findFirst().orElse(null));
        }
        this.defaultId = wanted;
        LOG.infof("models on %s (generation in %s): %s (default %s); failed: %s", device,
                DevicePolicy.name(generationDtype), models.keySet(), defaultId, failures.keySet());
    }

    static List<Path> folders(LabConfig config) {
        List<Path> dirs = new ArrayList<>();
        dirs.add(Path.of(config.projectModelsDir()));
        config.modelsDir().ifPresent(s -> {
            for (String part : s.split("[:,]")) {
                if (!part.isBlank()) {
                    dirs.add(Path.of(part.trim()));
                }
            }
        });
        return dirs;
    }

    private void loadAll(Path dir) {
        if (!Files.isDirectory(dir)) {
            LOG.warnf("models folder %s does not exist", dir.toAbsolutePath());
            return;
        }
        List<Path> candidates;
        try (Stream<Path> s = Files.list(dir)) {
            candidates = s.filter(Files::isDirectory).filter(p -> !p.getFileName().toString().startsWith("."))
                    .sorted().toList();
        } catch (IOException e) {
            LOG.errorf("cannot list models folder %s: %s", dir, e.getMessage());
            return;
        }
        for (Path folder : candidates) {
            String id = folder.getFileName().toString();
            if (models.containsKey(id)) {
                LOG.warnf("model %s in %s ignored: a model with that id is already loaded", id, folder);
                continue;
            }
            long t0 = System.nanoTime();
            try {
                models.put(id, LanguageModel.load(folder.toAbsolutePath(), device,
                        ai.djl.ndarray.types.DataType.FLOAT32, generationDtype));
                failures.remove(id);
                LOG.infof("loaded model %s from %s in %.0f ms", id, folder, (System.nanoTime() - t0) / 1e6);
            } catch (RuntimeException e) {
                String msg = e.getMessage() == null ? e.toString() : e.getMessage();
                failures.put(id, new Failure(id, folder.toAbsolutePath().toString(), msg));
                LOG.errorf("model %s not loaded: %s", id, msg);
            }
        }
    }

    public Optional<LanguageModel> find(String id) {
        return Optional.ofNullable(models.get(id));
    }

    /** The model a request asked for, or the default when it named none. */
    public Optional<LanguageModel> resolve(String idOrNull) {
        return find(idOrNull == null || idOrNull.isBlank() ? defaultId : idOrNull);
    }

    /** The model {@code idOrNull} names (the default one when null or blank), or the 404 that names the loaded ones. */
    public LanguageModel require(String idOrNull) {
        boolean none = idOrNull == null || idOrNull.isBlank();
        return resolve(idOrNull).orElseThrow(() -> none && defaultId == null
                ? new Refusal(Refusal.Kind.NOT_FOUND, "no_model", "no model is loaded")
                : unknownModel(none ? defaultId : idOrNull, ""));
    }

    /**
     * The refusal for a model that is not loaded here (the one place it is worded): 404 unknown_model naming the
     * loaded ones; {@code more} adds why it was wanted (empty: nothing).
     */
    public Refusal unknownModel(String id, String more) {
        return new Refusal(Refusal.Kind.NOT_FOUND, "unknown_model", "model '" + id + "' is not loaded (loaded: "
                + all().stream().map(LanguageModel::id).toList() + ")" + more);
    }

    public Collection<LanguageModel> all() {
        return Collections.unmodifiableCollection(models.values());
    }

    public Collection<Failure> failures() {
        return Collections.unmodifiableCollection(failures.values());
    }

    public String defaultId() {
        return defaultId;
    }

    public Device device() {
        return device;
    }

    /** dtype of generation: float32 on the CPU, LAB_GPU_DTYPE on a GPU. */
    public ai.djl.ndarray.types.DataType generationDtype() {
        return generationDtype;
    }

    @PreDestroy
    void close() {
        models.values().forEach(LanguageModel::close);
    }
}
