package lab.steering.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A model folder's {@code tokenizer.json} through DJL's Hugging Face tokenizers: no truncation, no padding,
 * never the hub. BOS follows Hugging Face's rule: the tokenizer's own post-processor adds it, or
 * {@code tokenizer_config.json} sets {@code add_bos_token}; never the model type.
 */
public final class TextTokenizer implements AutoCloseable {

    private final HuggingFaceTokenizer tokenizer;
    private final long bosToPrepend; // -1: the tokenizer adds BOS itself, or none is wanted

    private TextTokenizer(HuggingFaceTokenizer tokenizer, long bosToPrepend) {
        this.tokenizer = tokenizer;
        this.bosToPrepend = bosToPrepend;
    }

    public static TextTokenizer load(Path folder) {
        Path file = folder.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException(file, "missing (a Hugging Face model folder needs tokenizer.json)");
        }
        HuggingFaceTokenizer tok;
        try {
            tok = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(file)
                    .optAddSpecialTokens(true)
                    .optTruncation(false)
                    .optPadding(false)
                    .build();
        } catch (IOException | RuntimeException e) {
            throw new ModelLoadException(file, "cannot be loaded by the tokenizers library: " + e.getMessage(), e);
        }
        return new TextTokenizer(tok, bosFromTokenizerConfig(folder, tok));
    }

    /** The BOS id to prepend when tokenizer_config.json asks for it and the tokenizer does not add it. */
    private static long bosFromTokenizerConfig(Path folder, HuggingFaceTokenizer tok) {
        Path cfg = folder.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(cfg)) {
            return -1;
        }
        try {
            JsonNode root = new ObjectMapper().readTree(cfg.toFile());
            if (!root.path("add_bos_token").asBoolean(false)) {
                return -1;
            }
            JsonNode bos = root.get("bos_token");
            String text = bos == null ? null : bos.isTextual() ? bos.asText() : bos.path("content").asText(null);
            if (text == null) {
                throw new ModelLoadException(cfg, "add_bos_token is true but bos_token is missing");
            }
            long[] ids = tok.encode(text, false, false).getIds();
            if (ids.length != 1) {
                throw new ModelLoadException(cfg, "bos_token '" + text + "' is not a single token");
            }
            long[] probe = tok.encode("a", true, false).getIds();
            return probe.length > 0 && probe[0] == ids[0] ? -1 : ids[0];
        } catch (IOException e) {
            throw new ModelLoadException(cfg, "not valid JSON: " + e.getMessage());
        }
    }

    /** Token ids of {@code text}, with BOS when the tokenizer's rule adds one. */
    public long[] encode(String text) {
        long[] ids = tokenizer.encode(text, true, false).getIds();
        if (bosToPrepend >= 0 && (ids.length == 0 || ids[0] != bosToPrepend)) {
            long[] out = new long[ids.length + 1];
            out[0] = bosToPrepend;
            System.arraycopy(ids, 0, out, 1, ids.length);
            return out;
        }
        return ids;
    }

    /** Text of the ids, special tokens included. */
    public String decode(long[] ids) {
        return tokenizer.decode(ids, false);
    }

    /** Text of the ids, special tokens dropped. */
    public String decodeText(long[] ids) {
        return tokenizer.decode(ids, true);
    }

    /**
     * The text that token {@code ids[i]} adds after {@code ids[0..i-1]}: decoding with a short left context,
     * so that tokenizers which drop or merge leading spaces still give the right piece.
     */
    public String pieceAt(long[] ids, int i) {
        int from = Math.max(0, i - 4);
        String before = decode(Arrays.copyOfRange(ids, from, i));
        String with = decode(Arrays.copyOfRange(ids, from, i + 1));
        return with.startsWith(before) ? with.substring(before.length()) : decode(new long[] {ids[i]});
    }

    /** Pieces of every token in a sequence (prompt display). */
    public String[] pieces(long[] ids) {
        String[] out = new String[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = pieceAt(ids, i);
        }
        return out;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
