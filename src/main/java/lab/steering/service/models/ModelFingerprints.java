package lab.steering.service.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import lab.steering.model.LanguageModel;
import org.jboss.logging.Logger;

/**
 * A fingerprint per model, computed on first need from its folder (the model need not be loaded): the identity an operator is tied to (an operator depends
 * on the config and the weights only, so two folders with the same weights and different tokenizers share one).
 * <p>
 * SHA-256 over: a version tag; config.json in canonical form (keys sorted, no whitespace); then, for each weights
 * file in order (model.safetensors, or the shards the index names, sorted), its size, its header (every tensor's
 * name, dtype, shape and offsets) and its tensor data: all of it up to 64 MiB, beyond that 64 evenly spaced samples
 * of 1 MiB (first and last included). Sampling keeps large models cheap (64 MiB of reads whatever the size) at the
 * price that a change confined to an unsampled region goes unnoticed.
 */
@ApplicationScoped
public class ModelFingerprints {

    private static final Logger LOG = Logger.getLogger(ModelFingerprints.class);
    static final long FULL_HASH_LIMIT = 64L << 20;
    static final int SAMPLES = 64;
    static final int SAMPLE_BYTES = 1 << 20;

    private final Map<String, String> byModel = new ConcurrentHashMap<>();

    /** The model's fingerprint (64 hex digits). */
    public String of(LanguageModel model) {
        return of(model.id(), model.folder());
    }

    /** The fingerprint of model {@code id} in {@code folder}, loaded or not (computed once, then kept). */
    public String of(String id, Path folder) {
        return byModel.computeIfAbsent(id, x -> {
            long t0 = System.nanoTime();
            String fp = compute(folder);
            LOG.infof("fingerprint of %s: %s (%.0f ms)", id, fp, (System.nanoTime() - t0) / 1e6);
            return fp;
        });
    }

    public static String compute(Path folder) {
        return compute(folder, FULL_HASH_LIMIT, SAMPLE_BYTES);
    }

    /** As {@link #compute(Path)}, with the sampling thresholds given (tests). */
    static String compute(Path folder, long fullHashLimit, int sampleBytes) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update("steering-lab-fingerprint-v1\n".getBytes(StandardCharsets.UTF_8));
            ObjectMapper json = new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);
            JsonNode config = json.readTree(folder.resolve("config.json").toFile());
            md.update(json.writeValueAsBytes(json.treeToValue(config, Object.class)));
            for (Path file : weightFiles(folder, json)) {
                hashFile(md, file, fullHashLimit, sampleBytes);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot fingerprint " + folder + ": " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static List<Path> weightFiles(Path folder, ObjectMapper json) throws IOException {
        Path single = folder.resolve("model.safetensors");
        if (Files.isRegularFile(single)) {
            return List.of(single);
        }
        JsonNode map = json.readTree(folder.resolve("model.safetensors.index.json").toFile()).path("weight_map");
        TreeSet<String> shards = new TreeSet<>();
        map.elements().forEachRemaining(n -> shards.add(n.asText()));
        List<Path> out = new ArrayList<>();
        shards.forEach(s -> out.add(folder.resolve(s)));
        return out;
    }

    private static void hashFile(MessageDigest md, Path file, long fullHashLimit, int sampleBytes)
            throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(len, 0);
            long headerLen = len.flip().getLong(0);
            long dataStart = Math.min(size, 8 + Math.max(0, headerLen));
            md.update(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(size).array());
            update(md, ch, 0, dataStart);
            long data = size - dataStart;
            if (data <= fullHashLimit) {
                update(md, ch, dataStart, size);
                return;
            }
            for (int i = 0; i < SAMPLES; i++) {
                long at = dataStart + (data - sampleBytes) * i / (SAMPLES - 1);
                update(md, ch, at, at + sampleBytes);
            }
        }
    }

    private static void update(MessageDigest md, FileChannel ch, long from, long to) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(1 << 16);
        long at = from;
        while (at < to) {
            buf.clear().limit((int) Math.min(buf.capacity(), to - at));
            int n = ch.read(buf, at);
            if (n < 0) {
                break;
            }
            buf.flip();
            md.update(buf);
            at += n;
        }
    }
}
