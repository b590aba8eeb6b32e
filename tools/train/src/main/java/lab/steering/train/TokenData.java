package lab.steering.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import lab.steering.model.TextTokenizer;

/**
 * The token ids a run trains and validates on, made once with the project's tokenizer ({@link TextTokenizer}, the
 * same code path the app uses) and cached in the run folder:
 * <ul>
 *   <li>{@code tokenizer/}: a copy of tokenizer.json and tokenizer_config.json (the run never reads the corpus
 *       folder's tokenizer again, so a re-built corpus cannot change a run under way);</li>
 *   <li>{@code tokens-train.i32}, {@code tokens-valid.i32}: little-endian int32 ids, no header;</li>
 *   <li>{@code tokens.json}: counts, BOS/EOS ids and SHA-256 of the text files and tokenizer.json they came from.</li>
 * </ul>
 * Text: documents are separated by an empty line (the corpus format). Each document is encoded on its own (BOS
 * when the tokenizer's rule adds it) and followed by EOS; documents are concatenated in file order.
 *
 * <pre>java lab.steering.train.TokenData --train train.txt --valid valid.txt --tokenizer DIR --out RUN</pre>
 */
public final class TokenData {

    public static final String TRAIN = "tokens-train.i32";
    public static final String VALID = "tokens-valid.i32";
    public static final String META = "tokens.json";
    public static final String TOKENIZER_DIR = "tokenizer";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The cached ids of one run folder. */
    public record Tokens(int[] train, int[] valid, int bos, int eos, int vocabSize) {
    }

    private TokenData() {
    }

    public static void main(String[] args) throws IOException {
        TrainArgs a = TrainArgs.parse(args);
        System.setProperty("ai.djl.offline", "true");
        Path out = Path.of(a.require("out"));
        Tokens t = prepare(Path.of(a.require("train")), Path.of(a.require("valid")), Path.of(a.require("tokenizer")),
                out);
        System.out.printf("TokenData: %s: %,d train and %,d validation tokens, vocab %d, bos %d, eos %d%n",
                out, t.train().length, t.valid().length, t.vocabSize(), t.bos(), t.eos());
    }

    /**
     * Tokenizes the two text files into {@code out} unless a cache made from the same files and tokenizer is
     * there already; returns the ids.
     *
     * @param tokenizer a folder with tokenizer.json (and tokenizer_config.json), or the tokenizer.json itself
     */
    public static Tokens prepare(Path trainText, Path validText, Path tokenizer, Path out) throws IOException {
        Path tokDir = Files.isDirectory(tokenizer) ? tokenizer : tokenizer.getParent();
        Files.createDirectories(out);
        ObjectNode want = JSON.createObjectNode();
        want.put("trainSha256", sha256(trainText));
        want.put("validSha256", sha256(validText));
        want.put("tokenizerSha256", sha256(tokDir.resolve("tokenizer.json")));
        Path meta = out.resolve(META);
        if (Files.isRegularFile(meta) && Files.isRegularFile(out.resolve(TRAIN)) && Files.isRegularFile(out.resolve(VALID))) {
            JsonNode have = JSON.readTree(meta.toFile());
            boolean same = true;
            for (String k : List.of("trainSha256", "validSha256", "tokenizerSha256")) {
                same &= want.get(k).asText().equals(have.path(k).asText());
            }
            if (same) {
                return load(out);
            }
            if (Files.exists(out.resolve(Checkpoint.DIR))) {
                throw new IllegalStateException("the corpus or tokenizer changed since " + out + " was tokenized, and "
                        + "that folder holds a checkpoint trained on the old ids: use another run folder");
            }
            System.out.println("TokenData: corpus or tokenizer changed; tokenizing again");
        }
        Path ownTok = out.resolve(TOKENIZER_DIR);
        Files.createDirectories(ownTok);
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
            if (Files.isRegularFile(tokDir.resolve(f))) {
                Files.copy(tokDir.resolve(f), ownTok.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        int[] special = specialIds(ownTok);
        long t0 = System.nanoTime();
        int[] train;
        int[] valid;
        try (TextTokenizer tok = TextTokenizer.load(ownTok)) {
            train = encodeDocuments(tok, Files.readString(trainText), special[1]);
            valid = encodeDocuments(tok, Files.readString(validText), special[1]);
        }
        writeInts(out.resolve(TRAIN), train);
        writeInts(out.resolve(VALID), valid);
        want.put("trainTokens", train.length);
        want.put("validTokens", valid.length);
        want.put("bos", special[0]);
        want.put("eos", special[1]);
        want.put("vocabSize", special[2]);
        want.put("trainText", trainText.toAbsolutePath().toString());
        want.put("validText", validText.toAbsolutePath().toString());
        want.put("tokenizer", tokDir.toAbsolutePath().toString());
        want.put("seconds", (System.nanoTime() - t0) / 1e9);
        want.put("rule", "documents split on empty lines; each encoded with the tokenizer's own special-token rule "
                + "(BOS) and followed by EOS; concatenated in file order");
        Path tmp = out.resolve(META + ".tmp");
        JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), want);
        Files.move(tmp, meta, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return new Tokens(train, valid, special[0], special[1], special[2]);
    }

    /** The ids cached in a run folder. */
    public static Tokens load(Path out) throws IOException {
        JsonNode m = JSON.readTree(out.resolve(META).toFile());
        return new Tokens(readInts(out.resolve(TRAIN)), readInts(out.resolve(VALID)), m.get("bos").asInt(),
                m.get("eos").asInt(), m.get("vocabSize").asInt());
    }

    /** Splits on empty lines, encodes each document (BOS by the tokenizer's rule) and appends EOS. */
    static int[] encodeDocuments(TextTokenizer tok, String text, int eos) {
        IntList out = new IntList(text.length() / 3);
        for (String doc : documents(text)) {
            for (long id : tok.encode(doc)) {
                out.add((int) id);
            }
            out.add(eos);
        }
        return out.toArray();
    }

    /** Documents of the corpus format: blocks separated by one or more empty lines, trimmed of outer newlines. */
    static List<String> documents(String text) {
        List<String> docs = new ArrayList<>();
        for (String block : text.replace("\r\n", "\n").split("\n\\s*\n")) {
            String d = block.strip();
            if (!d.isEmpty()) {
                docs.add(d);
            }
        }
        return docs;
    }

    /**
     * {@code [bos, eos, vocabSize]} from a tokenizer folder: BOS/EOS named by tokenizer_config.json (bos_token,
     * eos_token) and looked up among tokenizer.json's added tokens; vocab size = 1 + the largest id.
     */
    static int[] specialIds(Path tokDir) throws IOException {
        JsonNode tj = JSON.readTree(tokDir.resolve("tokenizer.json").toFile());
        java.util.Map<String, Integer> added = new java.util.HashMap<>();
        int maxId = -1;
        for (JsonNode t : tj.path("added_tokens")) {
            added.put(t.get("content").asText(), t.get("id").asInt());
            maxId = Math.max(maxId, t.get("id").asInt());
        }
        for (var it = tj.path("model").path("vocab").fields(); it.hasNext(); ) {
            maxId = Math.max(maxId, it.next().getValue().asInt());
        }
        String bos = "<|bos|>";
        String eos = "<|eos|>";
        Path cfg = tokDir.resolve("tokenizer_config.json");
        if (Files.isRegularFile(cfg)) {
            JsonNode c = JSON.readTree(cfg.toFile());
            bos = tokenText(c.get("bos_token"), bos);
            eos = tokenText(c.get("eos_token"), eos);
        }
        if (!added.containsKey(eos)) {
            throw new IllegalArgumentException(tokDir + ": EOS token '" + eos + "' is not an added token of tokenizer.json");
        }
        return new int[] {added.getOrDefault(bos, -1), added.get(eos), maxId + 1};
    }

    private static String tokenText(JsonNode n, String fallback) {
        if (n == null || n.isNull()) {
            return fallback;
        }
        return n.isTextual() ? n.asText() : n.path("content").asText(fallback);
    }

    public static void writeInts(Path file, int[] ids) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        ByteBuffer b = ByteBuffer.allocate(ids.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(ids);
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            while (b.hasRemaining()) {
                ch.write(b);
            }
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    public static int[] readInts(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        if (bytes.length % 4 != 0) {
            throw new IOException(file + ": length " + bytes.length + " is not a multiple of 4");
        }
        int[] out = new int[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
        return out;
    }

    public static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---- windows ----

    /**
     * Fills {@code dst} (rows * (context + 1)) with random windows of {@code context + 1} consecutive ids. The start
     * of each window is a pure function of (seed, step, micro, row): there is no generator state to save, so a
     * resumed run draws exactly the windows an uninterrupted run would.
     */
    public static void sampleWindows(int[] tokens, int context, long seed, long step, int micro, int rows, long[] dst) {
        int span = context + 1;
        long range = tokens.length - span + 1;
        if (range <= 0) {
            throw new IllegalArgumentException(tokens.length + " tokens are fewer than one window of " + span);
        }
        for (int r = 0; r < rows; r++) {
            long h = mix(mix(mix(seed ^ 0x5DEECE66DL) + step) + ((long) micro << 20) + r);
            int start = (int) Math.floorMod(h, range);
            for (int j = 0; j < span; j++) {
                dst[r * span + j] = tokens[start + j];
            }
        }
    }

    /** SplitMix64's finaliser. */
    static long mix(long z) {
        z += 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** A growable int array. */
    static final class IntList {
        private int[] a;
        private int n;

        IntList(int capacity) {
            a = new int[Math.max(16, capacity)];
        }

        void add(int v) {
            if (n == a.length) {
                a = java.util.Arrays.copyOf(a, a.length * 2);
            }
            a[n++] = v;
        }

        int[] toArray() {
            return java.util.Arrays.copyOf(a, n);
        }
    }
}
