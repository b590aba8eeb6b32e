package lab.steering.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Writes a trained {@link BpeTrainer.Model} as a Hugging Face tokenizer folder:
 * <ul>
 *   <li>{@code tokenizer.json}: model BPE (vocab, merges as {@code "left right"} strings, no unk token, no dropout,
 *       no byte fallback), no normalizer, pre-tokenizer ByteLevel (add_prefix_space false, use_regex true), decoder
 *       ByteLevel, post-processor TemplateProcessing that puts {@code <|bos|>} before a single sequence (and before
 *       each of a pair), added tokens {@code <|bos|>} (0) and {@code <|eos|>} (1), both special.</li>
 *   <li>{@code tokenizer_config.json}: bos/eos tokens, model_max_length, add_bos_token true (the post-processor
 *       already does it; the flag states the same rule for readers that look for it), add_eos_token false,
 *       clean_up_tokenization_spaces false (byte-level text needs no clean-up; true would break round trips).</li>
 *   <li>{@code special_tokens_map.json}: bos and eos, for Hugging Face transformers.</li>
 *   <li>{@code training.json}: corpus counts and timings of the training run.</li>
 * </ul>
 */
public final class TokenizerFiles {

    private TokenizerFiles() {
    }

    public static void write(Path dir, BpeTrainer.Model model, int modelMaxLength, BpeTrainer.Report report)
            throws IOException {
        Files.createDirectories(dir);
        ObjectMapper m = CorpusBuilder.mapper();
        m.writeValue(dir.resolve("tokenizer.json").toFile(), tokenizerJson(m, model));

        ObjectNode config = m.createObjectNode();
        config.put("tokenizer_class", "PreTrainedTokenizerFast");
        config.put("bos_token", BpeTrainer.BOS);
        config.put("eos_token", BpeTrainer.EOS);
        config.put("add_bos_token", true);
        config.put("add_eos_token", false);
        config.put("model_max_length", modelMaxLength);
        config.put("clean_up_tokenization_spaces", false);
        m.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);

        ObjectNode map = m.createObjectNode();
        map.put("bos_token", BpeTrainer.BOS);
        map.put("eos_token", BpeTrainer.EOS);
        m.writeValue(dir.resolve("special_tokens_map.json").toFile(), map);

        if (report != null) {
            ObjectNode r = m.valueToTree(report);
            r.put("vocabSize", model.tokens().size());
            r.put("regex", ByteLevel.REGEX);
            m.writeValue(dir.resolve("training.json").toFile(), r);
        }
    }

    static ObjectNode tokenizerJson(ObjectMapper m, BpeTrainer.Model model) {
        ObjectNode root = m.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int id = 0; id < BpeTrainer.SPECIALS.size(); id++) {
            ObjectNode t = added.addObject();
            t.put("id", id);
            t.put("content", BpeTrainer.SPECIALS.get(id));
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "ByteLevel");
        pre.put("add_prefix_space", false);
        pre.put("trim_offsets", true);
        pre.put("use_regex", true);

        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        special(single, 0);
        sequence(single, "A", 0);
        ArrayNode pair = post.putArray("pair");
        special(pair, 0);
        sequence(pair, "A", 0);
        special(pair, 1);
        sequence(pair, "B", 1);
        ObjectNode st = post.putObject("special_tokens").putObject(BpeTrainer.BOS);
        st.put("id", BpeTrainer.BOS);
        st.putArray("ids").add(0);
        st.putArray("tokens").add(BpeTrainer.BOS);

        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "ByteLevel");
        dec.put("add_prefix_space", true);
        dec.put("trim_offsets", true);
        dec.put("use_regex", true);

        ObjectNode bpe = root.putObject("model");
        bpe.put("type", "BPE");
        bpe.putNull("dropout");
        bpe.putNull("unk_token");
        bpe.putNull("continuing_subword_prefix");
        bpe.putNull("end_of_word_suffix");
        bpe.put("fuse_unk", false);
        bpe.put("byte_fallback", false);
        bpe.put("ignore_merges", false);
        ObjectNode vocab = bpe.putObject("vocab");
        List<String> tokens = model.tokens();
        for (int i = 0; i < tokens.size(); i++) {
            vocab.put(tokens.get(i), i);
        }
        ArrayNode merges = bpe.putArray("merges");
        for (int[] mg : model.merges()) {
            merges.add(tokens.get(mg[0]) + " " + tokens.get(mg[1]));
        }
        return root;
    }

    private static void special(ArrayNode a, int typeId) {
        ObjectNode s = a.addObject().putObject("SpecialToken");
        s.put("id", BpeTrainer.BOS);
        s.put("type_id", typeId);
    }

    private static void sequence(ArrayNode a, String id, int typeId) {
        ObjectNode s = a.addObject().putObject("Sequence");
        s.put("id", id);
        s.put("type_id", typeId);
    }
}
