package lab.steering.train;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import lab.steering.model.SafetensorsWriter;

/**
 * A resumable training state in one safetensors file, {@code RUN/checkpoint/state.safetensors}: float32 tensors
 * {@code param/NAME}, {@code adam_m/NAME}, {@code adam_v/NAME} (NAME = Hugging Face parameter name) and, in the
 * header's {@code __metadata__}, a JSON string {@code state} with the step, tokens seen, training seconds, the
 * {@link TrainingConfig}, the model config and the validation history. Window sampling is a pure function of
 * (seed, step), so the step is the whole generator state.
 *
 * <p>Writing is atomic: the file is written as {@code state.safetensors.tmp}, forced to disk and renamed over the
 * previous one, so a kill at any moment leaves either the old or the new checkpoint.
 */
public final class Checkpoint {

    public static final String DIR = "checkpoint";
    public static final String FILE = "state.safetensors";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a checkpoint holds. */
    public record Loaded(JsonNode state, Map<String, float[]> params, Map<String, float[]> first,
                         Map<String, float[]> second) {
    }

    private Checkpoint() {
    }

    public static Path file(Path run) {
        return run.resolve(DIR).resolve(FILE);
    }

    public static boolean exists(Path run) {
        return Files.isRegularFile(file(run));
    }

    /** Writes parameters, optimizer moments and state atomically. */
    public static void save(Path run, Map<String, NDArray> params, AdamW adam, ObjectNode state) throws IOException {
        Path dir = Files.createDirectories(run.resolve(DIR));
        SafetensorsWriter w = new SafetensorsWriter();
        add(w, "param/", params);
        add(w, "adam_m/", adam.firstMoments());
        add(w, "adam_v/", adam.secondMoments());
        w.metadata("format", "steering-lab training checkpoint v1");
        w.metadata("state", JSON.writeValueAsString(state));
        Path tmp = dir.resolve(FILE + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
             OutputStream out = new java.io.BufferedOutputStream(java.nio.channels.Channels.newOutputStream(ch), 1 << 20)) {
            w.write(out);
            out.flush();
            ch.force(true);
        }
        Files.move(tmp, dir.resolve(FILE), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void add(SafetensorsWriter w, String prefix, Map<String, NDArray> arrays) {
        arrays.forEach((name, a) -> w.add(prefix + name, "F32", a.toFloatArray(), a.getShape().getShape()));
    }

    /** Reads a checkpoint written by {@link #save}. */
    public static Loaded load(Path run) throws IOException {
        Path file = file(run);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(len, 0);
            long n = len.getLong(0);
            ByteBuffer hb = ByteBuffer.allocate(Math.toIntExact(n));
            ch.read(hb, 8);
            JsonNode header = JSON.readTree(new String(hb.array(), StandardCharsets.UTF_8));
            JsonNode state = JSON.readTree(header.path("__metadata__").path("state").asText());
            Map<String, float[]> params = new LinkedHashMap<>();
            Map<String, float[]> first = new LinkedHashMap<>();
            Map<String, float[]> second = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                JsonNode t = e.getValue();
                if (!t.path("dtype").asText().equals("F32")) {
                    throw new IOException(file + ": tensor " + e.getKey() + " is not F32");
                }
                long begin = t.get("data_offsets").get(0).asLong();
                long end = t.get("data_offsets").get(1).asLong();
                ByteBuffer data = ByteBuffer.allocate(Math.toIntExact(end - begin)).order(ByteOrder.LITTLE_ENDIAN);
                long pos = 8 + n + begin;
                while (data.hasRemaining()) {
                    int r = ch.read(data, pos + data.position());
                    if (r < 0) {
                        throw new IOException(file + ": truncated at tensor " + e.getKey());
                    }
                }
                data.flip();
                float[] f = new float[(int) ((end - begin) / 4)];
                data.asFloatBuffer().get(f);
                String key = e.getKey();
                int slash = key.indexOf('/');
                String kind = key.substring(0, slash);
                String name = key.substring(slash + 1);
                switch (kind) {
                    case "param" -> params.put(name, f);
                    case "adam_m" -> first.put(name, f);
                    case "adam_v" -> second.put(name, f);
                    default -> throw new IOException(file + ": unexpected tensor " + key);
                }
            }
            return new Loaded(state, params, first, second);
        }
    }
}
