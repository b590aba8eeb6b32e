package lab.steering.steer;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A steering suite: concepts (a name, a concept prompt, an optional contrast prompt for additive vectors, and the
 * words that show the concept in a text) crossed with neutral prompts. The default suite ships with the app as
 * {@code suites/everyday.json} on the classpath.
 */
public record EvalSuite(String name, String description, List<Concept> concepts, List<String> prompts) {

    public static final String DEFAULT_RESOURCE = "suites/everyday.json";

    public record Concept(String name, String conceptPrompt, String contrastPrompt, List<String> words) {
    }

    /** Missing lists read as empty; null entries are kept for {@code SuiteCheck} to name. */
    public EvalSuite {
        concepts = concepts == null ? List.of() : java.util.Collections.unmodifiableList(new java.util.ArrayList<>(concepts));
        prompts = prompts == null ? List.of() : java.util.Collections.unmodifiableList(new java.util.ArrayList<>(prompts));
    }

    private static final ObjectMapper JSON = new ObjectMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    public static EvalSuite read(InputStream in) {
        try {
            return JSON.readValue(in, EvalSuite.class);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static EvalSuite read(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return read(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The suite that ships with the app. */
    public static EvalSuite defaultSuite() {
        try (InputStream in = EvalSuite.class.getClassLoader().getResourceAsStream(DEFAULT_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(DEFAULT_RESOURCE + " is not on the classpath");
            }
            return read(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The first {@code concepts} concepts and {@code prompts} prompts (a smaller run of the same suite). */
    public EvalSuite first(int concepts, int prompts) {
        return new EvalSuite(name, description, this.concepts.subList(0, Math.min(concepts, this.concepts.size())),
                this.prompts.subList(0, Math.min(prompts, this.prompts.size())));
    }
}
