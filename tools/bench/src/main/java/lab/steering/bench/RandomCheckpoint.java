package lab.steering.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lab.steering.model.SafetensorsWriter;

/**
 * Writes a randomly initialised checkpoint in the exact shape of Llama 3.2 1B (hidden 2048, 16 layers, 32 heads,
 * 8 kv heads, head dim 64, intermediate 8192, vocab 128256, tied embeddings, llama3 RoPE scaling factor 32), for
 * benchmarks at a real model's size: no weights of that model can be obtained here (STACK.md). Weights as
 * transformers initialises a fresh LlamaForCausalLM: every linear and the embedding normal(0, 0.02), every norm
 * weight 1; stored in bfloat16 (2.5 GB) like the published checkpoint, streamed to disk (no large heap needed).
 * Deterministic for a seed: each tensor draws from its own generator seeded by the seed and the tensor's name.
 *
 * <p>Usage: {@code RandomCheckpoint OUT_DIR TOKENIZER_DIR [seed]}; TOKENIZER_DIR holds a Llama 3 tokenizer.json
 * (and tokenizer_config.json), which is copied beside the weights. scripts/random-checkpoint.sh runs it.
 */
public final class RandomCheckpoint {

    static final int HIDDEN = 2048;
    static final int LAYERS = 16;
    static final int HEADS = 32;
    static final int KV_HEADS = 8;
    static final int HEAD_DIM = 64;
    static final int INTERMEDIATE = 8192;
    static final int VOCAB = 128256;
    static final double STD = 0.02;

    private RandomCheckpoint() {
    }

    /** One tensor: its HF name, shape, and whether it is a norm weight (ones) rather than normal(0, STD). */
    record Tensor(String name, long[] shape, boolean ones) {
        long elements() {
            long n = 1;
            for (long s : shape) {
                n *= s;
            }
            return n;
        }
    }

    static List<Tensor> tensors() {
        List<Tensor> out = new ArrayList<>();
        out.add(new Tensor("model.embed_tokens.weight", new long[] {VOCAB, HIDDEN}, false));
        int kv = KV_HEADS * HEAD_DIM;
        for (int l = 0; l < LAYERS; l++) {
            String p = "model.layers." + l + ".";
            out.add(new Tensor(p + "input_layernorm.weight", new long[] {HIDDEN}, true));
            out.add(new Tensor(p + "self_attn.q_proj.weight", new long[] {HEADS * HEAD_DIM, HIDDEN}, false));
            out.add(new Tensor(p + "self_attn.k_proj.weight", new long[] {kv, HIDDEN}, false));
            out.add(new Tensor(p + "self_attn.v_proj.weight", new long[] {kv, HIDDEN}, false));
            out.add(new Tensor(p + "self_attn.o_proj.weight", new long[] {HIDDEN, HEADS * HEAD_DIM}, false));
            out.add(new Tensor(p + "post_attention_layernorm.weight", new long[] {HIDDEN}, true));
            out.add(new Tensor(p + "mlp.gate_proj.weight", new long[] {INTERMEDIATE, HIDDEN}, false));
            out.add(new Tensor(p + "mlp.up_proj.weight", new long[] {INTERMEDIATE, HIDDEN}, false));
            out.add(new Tensor(p + "mlp.down_proj.weight", new long[] {HIDDEN, INTERMEDIATE}, false));
        }
        out.add(new Tensor("model.norm.weight", new long[] {HIDDEN}, true));
        return out;
    }

    /** config.json as transformers writes it for Llama 3.2 1B (rope_scaling, torch_dtype: the hub's spelling). */
    static ObjectNode config(ObjectMapper json) {
        ObjectNode c = json.createObjectNode();
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("model_type", "llama");
        c.put("hidden_size", HIDDEN);
        c.put("intermediate_size", INTERMEDIATE);
        c.put("num_hidden_layers", LAYERS);
        c.put("num_attention_heads", HEADS);
        c.put("num_key_value_heads", KV_HEADS);
        c.put("head_dim", HEAD_DIM);
        c.put("vocab_size", VOCAB);
        c.put("max_position_embeddings", 131072);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", 500000.0);
        ObjectNode rope = c.putObject("rope_scaling");
        rope.put("factor", 32.0);
        rope.put("high_freq_factor", 4.0);
        rope.put("low_freq_factor", 1.0);
        rope.put("original_max_position_embeddings", 8192);
        rope.put("rope_type", "llama3");
        c.put("tie_word_embeddings", true);
        c.put("bos_token_id", 128000);
        ArrayNode eos = c.putArray("eos_token_id");
        eos.add(128001).add(128008).add(128009);
        c.put("torch_dtype", "bfloat16");
        c.put("hidden_act", "silu");
        c.put("attention_bias", false);
        c.put("attention_dropout", 0.0);
        c.put("mlp_bias", false);
        c.put("initializer_range", STD);
        c.put("pretraining_tp", 1);
        c.put("use_cache", true);
        return c;
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: RandomCheckpoint OUT_DIR TOKENIZER_DIR [seed]");
            System.exit(2);
        }
        Path out = Path.of(args[0]);
        Path tokenizer = Path.of(args[1]);
        long seed = args.length > 2 ? Long.parseLong(args[2]) : 1234;
        if (!Files.isRegularFile(tokenizer.resolve("tokenizer.json"))) {
            throw new IOException("no tokenizer.json in " + tokenizer);
        }
        Files.createDirectories(out);
        ObjectMapper json = new ObjectMapper();
        long t0 = System.nanoTime();
        write(out.resolve("model.safetensors"), seed, json);
        json.writerWithDefaultPrettyPrinter().writeValue(out.resolve("config.json").toFile(), config(json));
        ObjectNode gen = json.createObjectNode();
        gen.put("bos_token_id", 128000);
        gen.putArray("eos_token_id").add(128001).add(128008).add(128009);
        json.writerWithDefaultPrettyPrinter().writeValue(out.resolve("generation_config.json").toFile(), gen);
        for (String f : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
            if (Files.isRegularFile(tokenizer.resolve(f))) {
                Files.copy(tokenizer.resolve(f), out.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        Files.writeString(out.resolve("README.md"), "Random weights in the shape of Llama 3.2 1B (seed " + seed
                + "), written by lab.steering.bench.RandomCheckpoint for benchmarks; not a trained model.\n");
        System.out.printf("wrote %s in %.0f s%n", out, (System.nanoTime() - t0) / 1e9);
    }

    /** The safetensors file: header, then every tensor's bf16 data streamed in 4 MB pieces. */
    static void write(Path file, long seed, ObjectMapper json) throws IOException {
        List<Tensor> tensors = tensors();
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("__metadata__", Map.of("format", "pt"));
        long offset = 0;
        for (Tensor t : tensors) {
            long bytes = 2 * t.elements();
            header.put(t.name(), Map.of("dtype", "BF16", "shape", t.shape(), "data_offsets",
                    new long[] {offset, offset + bytes}));
            offset += bytes;
        }
        byte[] head = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (head.length + 7) / 8 * 8;
        ByteBuffer prefix = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(padded).put(head);
        while (prefix.hasRemaining()) {
            prefix.put((byte) ' ');
        }
        prefix.flip();
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(prefix);
            ByteBuffer buf = ByteBuffer.allocateDirect(4 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Tensor t : tensors) {
                SplittableRandom rng = new SplittableRandom(seed * 1_000_003L + t.name().hashCode());
                short one = SafetensorsWriter.bf16(1f);
                for (long i = 0; i < t.elements(); i++) {
                    if (!buf.hasRemaining()) {
                        buf.flip();
                        while (buf.hasRemaining()) {
                            ch.write(buf);
                        }
                        buf.clear();
                    }
                    buf.putShort(t.ones() ? one : SafetensorsWriter.bf16((float) (STD * rng.nextGaussian())));
                }
            }
            buf.flip();
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
