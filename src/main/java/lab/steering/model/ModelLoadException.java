package lab.steering.model;

import java.nio.file.Path;

/** A model folder could not be loaded. The message names the file and the problem. */
public class ModelLoadException extends RuntimeException {

    public ModelLoadException(Path file, String problem) {
        super(file + ": " + problem);
    }

    public ModelLoadException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
