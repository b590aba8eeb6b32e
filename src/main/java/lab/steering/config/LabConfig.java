package lab.steering.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.util.Optional;

/** Typed settings under {@code lab.*}; application.properties maps the LAB_* environment variables onto them. */
@ConfigMapping(prefix = "lab")
public interface LabConfig {

    /** The project's own models folder, always scanned. */
    @WithDefault("models")
    String projectModelsDir();

    /** Extra folders of models (LAB_MODELS_DIR), separated by ':' or ','. */
    Optional<String> modelsDir();

    /** Model used when a request names none (LAB_DEFAULT_MODEL); else the first loaded one in name order. */
    Optional<String> defaultModel();

    /** auto | cpu | cuda | cuda:N (LAB_DEVICE). */
    @WithDefault("auto")
    String device();

    /** PyTorch intra-op threads (LAB_THREADS); default: PyTorch's own choice (the number of cores). */
    Optional<Integer> threads();

    /** Upper bound of maxNewTokens in one request. */
    @WithDefault("1024")
    int maxNewTokens();
}
