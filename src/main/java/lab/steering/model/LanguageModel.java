package lab.steering.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
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
    private Transformer decoder; // generation's forward pass when its dtype differs (e.g. bfloat16 on a GPU)
    private volatile boolean closed;
    private volatile long weightBytes;

    private LanguageModel(String id, Path folder, ModelConfig config, NDManager manager, Transformer transformer,
                          TextTokenizer tokenizer) {
        this.id = id;
        this.folder = folder;
        this.config = config;
        this.manager = manager;
        this.transformer = transformer;
        this.tokenizer = tokenizer;
        this.weightBytes = transformer.weights().bytes();
    }

    /** Loads config, tokenizer and weights (converted to float32) onto {@code device}. */
    public static LanguageModel load(Path folder, Device device) {
        return load(folder, device, DataType.FLOAT32);
    }

    public static LanguageModel load(Path folder, Device device, DataType dtype) {
        return load(folder, device, dtype, dtype);
    }

    public static LanguageModel load(Path folder, Device device, DataType dtype, DataType generationDtype) {
        return load(folder, device, dtype, generationDtype, WeightStorage.FLOAT32);
    }

    /**
     * Loads the weights in {@code dtype} (the copy that Jacobians and steering operators are computed from) and,
     * when {@code generationDtype} differs (bfloat16 or float16 on a GPU), converts them once more for generation.
     * On the CPU, {@code storage} says whether bfloat16 and float16 weight matrices stay so ({@link Weights}); on a
     * GPU they are converted.
     */
    public static LanguageModel load(Path folder, Device device, DataType dtype, DataType generationDtype,
                                     WeightStorage storage) {
        LanguageModel m = load0(folder, device, dtype, storage.on(device));
        try {
            m.decoder = m.transformer(generationDtype);
        } catch (RuntimeException | Error e) { // an OutOfMemoryError too: the tensors made so far are freed
            m.close();
            throw e;
        }
        return m;
    }

    /**
     * A model made in memory (benchmarks: random weights of a given shape), owning {@code manager}; no tokenizer
     * ({@link #tokenizer()} is null, so only the tensor paths work: forward, Jacobians, decoding by ids).
     */
    public static LanguageModel inMemory(String id, ModelConfig config, NDManager manager, Weights weights,
                                         DataType generationDtype) {
        LanguageModel m = new LanguageModel(id, Path.of(id), config, manager, new Transformer(config, weights, manager),
                null);
        m.decoder = m.transformer(generationDtype);
        return m;
    }

    private static LanguageModel load0(Path folder, Device device, DataType dtype, WeightStorage storage) {
        ModelConfig config = ModelConfig.read(folder);
        TextTokenizer tokenizer = TextTokenizer.load(folder);
        NDManager manager = NDManager.newBaseManager(device);
        manager.setName("model:" + folder.getFileName());
        try (SafetensorsReader reader = SafetensorsReader.open(folder)) {
            Weights weights = Weights.load(config, reader, manager, dtype, storage);
            Transformer transformer = new Transformer(config, weights, manager);
            return new LanguageModel(folder.getFileName().toString(), folder, config, manager, transformer, tokenizer);
        } catch (RuntimeException | Error e) { // an OutOfMemoryError too: the tensors made so far are freed
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
     * first use, and kept; compact matrices are shared, and widened to that dtype layer by layer where they are used.
     */
    public synchronized Transformer transformer(DataType dtype) {
        if (closed) {
            throw new IllegalStateException("model '" + id + "' was unloaded");
        }
        if (dtype == transformer.dataType()) {
            return transformer;
        }
        Transformer twin = twins.get(dtype);
        if (twin == null) {
            NDManager m = manager.newSubManager();
            twin = new Transformer(config, transformer.weights().to(m, dtype), m);
            // kept for the model's life: out of any NDScope the caller has open, which would close them
            NDScope.unregister(m.getManagedArrays().toArray(new NDArray[0]));
            twins.put(dtype, twin);
            weightBytes += twin.weights().bytes() - transformer.weights().compactBytes();
        }
        return twin;
    }

    /** The forward pass generation uses: {@link #transformer()} itself, or its bfloat16/float16 copy on a GPU. */
    public Transformer decoder() {
        return decoder == null ? transformer : decoder;
    }

    /** dtype of generation (see {@link #decoder()}). */
    public DataType generationDataType() {
        return decoder().dataType();
    }

    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    public Device device() {
        return manager.getDevice();
    }

    /** dtype of the loaded weights ({@link #transformer()}): Jacobians and steering operators start from these. */
    public DataType dataType() {
        return transformer.dataType();
    }

    /** The manager owning the weights; request managers are made from it with {@code newSubManager()}. */
    public NDManager manager() {
        return manager;
    }

    /**
     * Bytes of the weights held now: the loaded weights (compact matrices at their stored size), and each copy
     * {@link #transformer(DataType)} made (generation's when its dtype differs, float64 for exact Jacobians), less
     * the compact matrices it shares.
     */
    public long weightBytes() {
        return weightBytes;
    }

    /** True once {@link #close()} ran (the model was unloaded; its tensors are gone). */
    public boolean isClosed() {
        return closed;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (tokenizer != null) {
            tokenizer.close();
        }
        manager.close();
    }
}
