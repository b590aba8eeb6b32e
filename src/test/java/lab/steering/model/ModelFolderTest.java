package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import lab.steering.testing.TinyCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Scanning a model folder without loading it: config.json and file sizes, errors naming the file. */
class ModelFolderTest {

    @TempDir
    Path tmp;

    @Test
    void scansConfigAndWeightSizesOfSingleAndShardedFolders() throws Exception {
        Path single = TinyCheckpoint.llama().seed(1).writeTo(tmp.resolve("single"));
        ModelFolder s = ModelFolder.scan(single);
        assertEquals(Files.size(single.resolve("model.safetensors")), s.weightBytes());
        assertEquals(ModelConfig.read(single), s.config());

        Path sharded = TinyCheckpoint.llama().sharded(true).seed(1).writeTo(tmp.resolve("sharded"));
        ModelFolder h = ModelFolder.scan(sharded);
        assertEquals(2, h.weightFiles().size());
        long sum = 0;
        for (Path p : h.weightFiles()) {
            sum += Files.size(p);
        }
        assertEquals(sum, h.weightBytes());
    }

    @Test
    void namesTheMissingOrBrokenFile() throws Exception {
        Path f = TinyCheckpoint.llama().seed(2).writeTo(tmp.resolve("f"));
        Files.delete(f.resolve("model.safetensors"));
        assertTrue(assertThrows(ModelLoadException.class, () -> ModelFolder.scan(f)).getMessage()
                .contains("model.safetensors: missing"));
        Files.delete(f.resolve("tokenizer.json"));
        assertTrue(assertThrows(ModelLoadException.class, () -> ModelFolder.scan(f)).getMessage()
                .contains("tokenizer.json: missing"));
        Files.writeString(f.resolve("config.json"), "{not json");
        assertTrue(assertThrows(ModelLoadException.class, () -> ModelFolder.scan(f)).getMessage()
                .contains("config.json: not valid JSON"));
    }

    @Test
    void theSignatureChangesWhenAFileIsRewritten() throws Exception {
        Path f = TinyCheckpoint.llama().seed(3).writeTo(tmp.resolve("f"));
        String before = ModelFolder.signature(f);
        assertEquals(before, ModelFolder.scan(f).signature());
        Files.setLastModifiedTime(f.resolve("model.safetensors"), FileTime.fromMillis(12_345_000L));
        assertNotEquals(before, ModelFolder.signature(f));
    }
}
