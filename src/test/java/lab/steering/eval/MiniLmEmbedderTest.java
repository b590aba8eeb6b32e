package lab.steering.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The packaged sentence-embedding model loads offline and measures meaning: a paraphrase is much closer than an
 * unrelated sentence (MiniLM gives about 0.4 against 0.05 here; the margin asked is 0.2), a text is identical to
 * itself, and embeddings are repeatable (a benchmark run must reproduce).
 */
class MiniLmEmbedderTest {

    @Test
    void paraphrasesAreCloserThanUnrelatedSentences() {
        Embedder e = MiniLmEmbedder.shared();
        float[] dog = e.embed("The dog barked at the cat in the garden.");
        float[] puppy = e.embed("A puppy was playing with a kitten outside.");
        float[] market = e.embed("The stock market fell sharply on Tuesday.");
        assertEquals(384, dog.length);
        double near = Embedder.cosine(dog, puppy);
        double far = Embedder.cosine(dog, market);
        assertTrue(near > far + 0.2, "paraphrase " + near + " vs unrelated " + far);
        assertEquals(1.0, Embedder.cosine(dog, e.embed("The dog barked at the cat in the garden.")), 1e-6);
        assertArrayEquals(dog, e.embed("The dog barked at the cat in the garden."), "repeatable");
        assertEquals(0.0, Embedder.cosine(dog, e.embed("")), "a blank text is the zero vector");
    }
}
