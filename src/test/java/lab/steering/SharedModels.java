package lab.steering;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/** The real checkpoints in ../shared/models (beside the project); tests skip with a message when absent. */
public final class SharedModels {
    private SharedModels() {
    }

    public static final String STORIES = "stories260K";
    public static final String STORIES_TEXT = "stories260K-text";

    public static Path root() {
        return Path.of("..", "shared", "models").toAbsolutePath().normalize();
    }

    public static boolean present(String name) {
        return Files.isRegularFile(root().resolve(name).resolve("config.json"));
    }

    /** The folder, or the test is skipped (not failed) when ../shared is not there. */
    public static Path require(String name) {
        Path p = root().resolve(name);
        Assumptions.assumeTrue(present(name), "skipped: " + p + " is absent (../shared/models not beside the project)");
        return p;
    }
}
