package lab.steering.model;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.nio.file.Path;

/**
 * A loaded Hugging Face model folder: typed config, weights on a device, the forward pass and the tokenizer.
 * Its id is the folder name. Thread-safe for concurrent requests (weights are only read).
 */
public final class LanguageModel implements AutoCloseable {

    private final String id;
    private final Path folder;
    private final ModelConfig config;
    private final NDManager manager;
    private final Transformer transformer;
    private final TextTokenizer tokenizer;
    private final java.util.Map<DataType, Transformer> twins = new java.util.EnumMap<>(DataType.class);

    private LanguageModel(String id, Path folder, ModelConfig config, NDManager manager, Transformer transformer,
                          TextTokenizer tokenizer) {
        this.id = id;
        this.folder = folder;
        this.config = config;
        this.manager = manager;
        this.transformer = transformer;
        this.tokenizer = tokenizer;
    }

    /** Loads config, tokenizer and weights (converted to float32) onto {@code device}. */
    public static LanguageModel load(Path folder, Device device) {
        return load(folder, device, DataType.FLOAT32);
    }

    public static LanguageModel load(Path folder, Device device, DataType dtype) {
        ModelConfig config = ModelConfig.read(folder);
        TextTokenizer tokenizer = TextTokenizer.load(folder);
        NDManager manager = NDManager.newBaseManager(device);
        manager.setName("model:" + folder.getFileName());
        try (SafetensorsReader reader = SafetensorsReader.open(folder)) {
            Weights weights = Weights.load(config, reader, manager, dtype);
            Transformer transformer = new Transformer(config, weights, manager);
            return new LanguageModel(folder.getFileName().toString(), folder, config, manager, transformer, tokenizer);
        } catch (RuntimeException e) {
            manager.close();
            tokenizer.close();
            throw e;
        }
    }

    public String id() {
        return id;
    }

    public Path folder() {
        return folder;
    }

    public ModelConfig config() {
        return config;
    }

    public Transformer transformer() {
        return transformer;
    }

    /**
     * The forward pass in another dtype (e.g. float64 for exact Jacobians): the weights are converted once, on
     * first use, and kept.
     */
    public synchronized Transformer transformer(DataType dtype) {
        if (dtype == transformer.dataType()) {
            return transformer;
        }
        return twins.computeIfAbsent(dtype, d -> {
            NDManager twin = manager.newSubManager();
            return new Transformer(config, transformer.weights().to(twin, d), twin);
        });
    }

    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    public Device device() {
        return manager.getDevice();
    }

    public DataType dataType() {
        return transformer.dataType();
    }

    /** The manager owning the weights; request managers are made from it with {@code newSubManager()}. */
    public NDManager manager() {
        return manager;
    }

    @Override
    public void close() {
        tokenizer.close();
        manager.close();
    }
}
