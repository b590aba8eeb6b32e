package lab.steering.eval;

/**
 * A sentence-embedding model: text to a fixed-size vector whose cosine similarity measures closeness of meaning. The
 * benchmark's semantic scores (concept similarity, prompt relevance) go through this interface, so that tests can
 * give vectors with known angles and the app uses {@link MiniLmEmbedder}.
 */
public interface Embedder {

    /** A short name for reports (which model gave the similarities). */
    String name();

    /** The embedding of {@code text}; a blank text gives a zero vector (similarity 0 to everything). */
    float[] embed(String text);

    /** cos(a, b) = a.b / (|a| |b|); 0 when either is the zero vector. */
    static double cosine(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("vectors of different sizes: " + a.length + " and " + b.length);
        }
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.sqrt(na * nb);
    }
}
