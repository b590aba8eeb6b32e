package lab.steering.service.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import lab.steering.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Fingerprints: stable, blind to the tokenizer and to JSON layout, sensitive to config values and weight bytes. */
class ModelFingerprintsTest {

    @TempDir
    Path tmp;

    Path copy(String name) throws IOException {
        Path src = SharedModels.require(SharedModels.STORIES_TEXT);
        Path dst = Files.createDirectories(tmp.resolve(name));
        for (String f : new String[] {"config.json", "tokenizer.json", "model.safetensors"}) {
            Files.copy(src.resolve(f), dst.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        dst.resolve("config.json").toFile().setWritable(true);
        dst.resolve("model.safetensors").toFile().setWritable(true);
        return dst;
    }

    @Test
    void sameWeightsAndConfigGiveTheSameFingerprint() throws IOException {
        String text = ModelFingerprints.compute(SharedModels.require(SharedModels.STORIES_TEXT));
        assertTrue(text.matches("[0-9a-f]{64}"));
        assertEquals(text, ModelFingerprints.compute(SharedModels.require(SharedModels.STORIES)),
                "stories260K and stories260K-text differ only in the tokenizer");
        Path reformatted = copy("reformatted");
        String cfg = Files.readString(reformatted.resolve("config.json"));
        Files.writeString(reformatted.resolve("config.json"), cfg.replace("\n", "\n   "));
        assertEquals(text, ModelFingerprints.compute(reformatted));
    }

    @Test
    void aConfigValueOrOneWeightByteChangesIt() throws IOException {
        String text = ModelFingerprints.compute(SharedModels.require(SharedModels.STORIES_TEXT));
        Path eps = copy("eps");
        String cfg = Files.readString(eps.resolve("config.json"));
        Files.writeString(eps.resolve("config.json"), cfg.replace("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 1e-06"));
        assertNotEquals(text, ModelFingerprints.compute(eps));
        Path weights = copy("weights");
        byte[] w = Files.readAllBytes(weights.resolve("model.safetensors"));
        w[w.length - 100] ^= 1;
        Files.write(weights.resolve("model.safetensors"), w);
        assertNotEquals(text, ModelFingerprints.compute(weights));
    }

    @Test
    void largeFilesAreSampledAndASampledByteStillCounts() throws IOException {
        Path a = copy("a");
        // thresholds scaled down so that the 1 MB file takes the large-model path: 64 samples of 1 KiB
        String sampled = ModelFingerprints.compute(a, 4096, 1024);
        assertEquals(sampled, ModelFingerprints.compute(a, 4096, 1024));
        assertNotEquals(sampled, ModelFingerprints.compute(a));
        byte[] w = Files.readAllBytes(a.resolve("model.safetensors"));
        w[w.length - 1] ^= 1; // the last sample ends at the last byte
        Files.write(a.resolve("model.safetensors"), w);
        assertNotEquals(sampled, ModelFingerprints.compute(a, 4096, 1024));
    }
}
