package lab.steering.train;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.jacobian.Analysis;
import lab.steering.jacobian.Target;
import lab.steering.jacobian.TokenDecoder;
import lab.steering.model.LanguageModel;
import lab.steering.steer.EvalSuite;
import lab.steering.steer.SteeringEval;

/**
 * The second half of a model card (issue 19): what a user of the instrument sees in the model, measured.
 * <ul>
 *   <li>validation bits per byte of this model and, with {@code --old}, of an earlier model on the same text, per
 *       source of the validation split (each model reads the text with its own tokenizer, so that vocabularies
 *       compare: bits per UTF-8 byte, not per token);</li>
 *   <li>the steering evaluation ({@link SteeringEval}) of the operator and ActAdd on the default suite, with ten
 *       steered examples, good and bad; with {@code --old-eval}, an earlier run's summary beside it;</li>
 *   <li>for ten everyday prompts, the top five whole-word tokens of the last token's first left singular vector;</li>
 *   <li>greedy text of the card's prompts with the repetition controls (the plain greedy text is Publisher's).</li>
 * </ul>
 * Appends to the folder's README.md (replacing an earlier report) and writes {@code report.json} beside it.
 * <pre>java lab.steering.train.ModelReport --model models/steering-lab-base --corpus target/corpus
 *      [--old DIR] [--old-eval FILE.json] [--concepts 10] [--prompts 5] [--tokens 32]</pre>
 */
public final class ModelReport {

    static final String MARK = "<!-- ModelReport: generated below this line -->";
    /** The sources of the corpus the session-5 model was trained on: its validation text. */
    static final List<String> OLD_SOURCES = List.of("kjv", "brown", "nlp-corpus", "fortunes");
    static final List<Double> STRENGTHS = List.of(0.5, 1.0, 2.0, 3.0, 4.0);

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private ModelReport() {
    }

    public static void main(String[] args) throws IOException {
        TrainArgs a = TrainArgs.parse(args);
        Path model = Path.of(a.get("model", "models/" + Publisher.DEFAULT_NAME));
        Path corpus = Path.of(a.get("corpus", "target/corpus"));
        Path old = a.get("old", null) == null ? null : Path.of(a.get("old", null));
        Path oldEval = a.get("old-eval", null) == null ? null : Path.of(a.get("old-eval", null));
        int concepts = Integer.parseInt(a.get("concepts", "10"));
        int prompts = Integer.parseInt(a.get("prompts", "5"));
        int tokens = Integer.parseInt(a.get("tokens", "32"));
        Trainer.setUpEngine(Integer.parseInt(a.get("threads", "2")));

        Map<String, List<String>> valid = validBySource(corpus);
        ObjectNode report = JSON.createObjectNode();
        StringBuilder md = new StringBuilder();
        md.append(MARK).append("\n\n");

        // 1. bits per byte
        Map<String, double[]> mine;
        Map<String, double[]> theirs = null;
        try (LanguageModel lm = LanguageModel.load(model.toAbsolutePath(), Device.cpu())) {
            mine = bitsPerByte(lm, valid);
        }
        if (old != null) {
            try (LanguageModel lm = LanguageModel.load(old.toAbsolutePath(), Device.cpu())) {
                theirs = bitsPerByte(lm, valid);
            }
        }
        ObjectNode bpb = report.putObject("bitsPerByte");
        md.append("## Validation bits per byte\n\n");
        md.append("Each model reads the validation documents with its own tokenizer (BOS by its rule, the text, EOS; "
                + "documents back to back, in consecutive windows of its context, as the trainer's final evaluation); "
                + "bits = the summed negative log-likelihood of every predicted id / ln 2, per UTF-8 byte of the "
                + "documents' text. *Earlier sources* are the four the earlier model was trained and validated on "
                + "(its validation documents are the same documents here).\n\n");
        md.append(old != null ? "| validation text | bytes | this model | earlier model (" + old.getFileName()
                + ") |\n|---|---:|---:|---:|\n" : "| validation text | bytes | this model |\n|---|---:|---:|\n");
        for (String source : mine.keySet()) {
            double[] m = mine.get(source);
            ObjectNode row = bpb.putObject(source);
            row.put("bytes", (long) m[1]);
            row.put("tokens", (long) m[2]);
            row.put("bitsPerByte", m[0]);
            String label = source.equals("earlier sources") || source.equals("all") ? "**" + source + "**" : source;
            md.append(String.format(Locale.ROOT, "| %s | %,d | %.4f |", label, (long) m[1], m[0]));
            if (theirs != null) {
                double[] t = theirs.get(source);
                row.put("earlierBitsPerByte", t[0]);
                md.append(String.format(Locale.ROOT, " %.4f |", t[0]));
            }
            md.append('\n');
        }
        md.append('\n');

        // 2. steering evaluation, 3. decoded directions, 4. greedy text with repetition controls
        try (LanguageModel lm = LanguageModel.load(model.toAbsolutePath(), Device.cpu());
             lab.steering.generate.BatchDecoder batch = new lab.steering.generate.BatchDecoder(lm, 32, 1 << 20)) {
            EvalSuite suite = EvalSuite.defaultSuite().first(concepts, prompts);
            GenerationParams params = new GenerationParams(tokens, 0, 0, 1, 0);
            // each concept's continuations decoded together (the tokens of one at a time; minutes instead of tens)
            SteeringEval.Report eval = SteeringEval.run(lm, suite,
                    new SteeringEval.Settings(SteeringEval.METHODS, STRENGTHS, null, params), batch::runAll,
                    (stage, f) -> System.err.printf(Locale.ROOT, "\r[ModelReport] steering %3.0f%% %-70.70s",
                            100 * f, stage));
            System.err.println();
            report.set("steering", JSON.valueToTree(eval));
            steeringSection(md, eval, suite, oldEval == null ? null : JSON.readTree(oldEval.toFile()));
            directionsSection(md, report.putArray("directions"), lm);
            controlsSection(md, report.putArray("greedyWithControls"), lm);
        }

        Path readme = model.resolve("README.md");
        String card = Files.readString(readme, StandardCharsets.UTF_8);
        int at = card.indexOf(MARK);
        card = (at >= 0 ? card.substring(0, at) : card.stripTrailing() + "\n\n") + md;
        Files.writeString(readme, card, StandardCharsets.UTF_8);
        JSON.writeValue(model.resolve("report.json").toFile(), report);
        System.out.println("ModelReport: wrote " + readme + " and report.json");
    }

    // ---------------------------------------------------------------- bits per byte

    /** valid.txt's documents by source (documents.tsv lists train then valid, in file order). */
    static Map<String, List<String>> validBySource(Path corpus) throws IOException {
        List<String> docs = CorpusBuilder.readDocs(corpus.resolve("valid.txt"));
        List<String> sources = new ArrayList<>();
        for (String line : Files.readAllLines(corpus.resolve("documents.tsv"), StandardCharsets.UTF_8)) {
            String[] f = line.split("\t");
            if (f[0].equals("valid")) {
                sources.add(f[1]);
            }
        }
        if (sources.size() != docs.size()) {
            throw new IllegalStateException("valid.txt has " + docs.size() + " documents, documents.tsv lists "
                    + sources.size());
        }
        Map<String, List<String>> out = new LinkedHashMap<>();
        for (int i = 0; i < docs.size(); i++) {
            out.computeIfAbsent(sources.get(i), k -> new ArrayList<>()).add(docs.get(i));
        }
        return out;
    }

    /** Per source, plus "earlier sources" and "all": {bits per byte, bytes, predicted tokens}. */
    static Map<String, double[]> bitsPerByte(LanguageModel lm, Map<String, List<String>> bySource) {
        Map<String, double[]> out = new LinkedHashMap<>();
        List<String> earlier = new ArrayList<>();
        List<String> all = new ArrayList<>();
        for (Map.Entry<String, List<String>> e : bySource.entrySet()) {
            out.put(e.getKey(), bitsPerByte(lm, e.getValue()));
            if (OLD_SOURCES.contains(e.getKey())) {
                earlier.addAll(e.getValue());
            }
            all.addAll(e.getValue());
        }
        out.put("earlier sources", bitsPerByte(lm, earlier));
        out.put("all", bitsPerByte(lm, all));
        return out;
    }

    static double[] bitsPerByte(LanguageModel lm, List<String> docs) {
        List<Integer> ids = new ArrayList<>();
        long bytes = 0;
        int eos = lm.config().eosTokenIds().get(0);
        for (String d : docs) {
            for (long id : lm.tokenizer().encode(d)) {
                ids.add((int) id);
            }
            ids.add(eos);
            bytes += d.getBytes(StandardCharsets.UTF_8).length;
        }
        int[] stream = ids.stream().mapToInt(Integer::intValue).toArray();
        double[] nll = TrainModel.streamNll(lm.transformer(), lm.manager(), stream, lm.config().maxPositions(), 8, 0);
        return new double[] {nll[0] / Math.log(2) / bytes, bytes, nll[1]};
    }

    // ---------------------------------------------------------------- steering

    static void steeringSection(StringBuilder md, SteeringEval.Report eval, EvalSuite suite, JsonNode old) {
        md.append("## Steering evaluation\n\n");
        md.append(String.format(Locale.ROOT, "The project's own suite (`src/main/resources/suites/everyday.json`, "
                + "the first %d concepts x %d prompts), greedy decoding of %d new tokens, no repetition controls, "
                + "layer %d (2L/3), strengths %s. A pair counts when some strength puts a concept word into the "
                + "steered continuation that the unsteered one lacks, with the steered text's perplexity under the "
                + "unsteered model at most %.0fx the unsteered text's and no token repeated %d times in a row "
                + "(`SteeringEval`). Reproduce: `scripts/bench.sh steering-eval --concepts %d --prompts %d`.%n%n",
                suite.concepts().size(), suite.prompts().size(), eval.settings().params().maxNewTokens(),
                eval.layer(), eval.settings().strengths(), SteeringEval.MAX_PERPLEXITY_RATIO, SteeringEval.MAX_RUN,
                suite.concepts().size(), suite.prompts().size()));
        md.append("*By chance* scores each pair on the continuations steered by the other concepts (the same prompt, "
                + "every strength; `SteeringEval.chance`): how often the rule counts a success the concept did not "
                + "cause. A method steers toward its concept as far as its rate exceeds that.\n\n");
        md.append(old != null ? "| method | pairs | this model | by chance | earlier model |\n|---|---:|---:|---:|---:|\n"
                : "| method | pairs | this model | by chance |\n|---|---:|---:|---:|\n");
        for (SteeringEval.MethodResult mr : eval.methods()) {
            md.append(String.format(Locale.ROOT, "| %s | %d | **%d (%.0f%%)** | %.0f%% |", mr.method(), mr.pairs(),
                    mr.successes(), 100 * mr.rate(), 100 * mr.chance()));
            if (old != null) {
                for (JsonNode om : old.get("methods")) {
                    if (om.get("method").asText().equals(mr.method())) {
                        int s = om.get("successes").asInt();
                        int p = om.get("pairs").asInt();
                        md.append(String.format(Locale.ROOT, " %d (%.0f%%) |", s, 100.0 * s / p));
                    }
                }
            }
            md.append('\n');
        }
        md.append("\nPer concept (operator / ActAdd successes out of ").append(suite.prompts().size())
                .append(" prompts): ");
        List<String> per = new ArrayList<>();
        for (EvalSuite.Concept c : suite.concepts()) {
            int[] n = new int[eval.methods().size()];
            for (int mi = 0; mi < n.length; mi++) {
                for (SteeringEval.Pair p : eval.methods().get(mi).details()) {
                    if (p.concept().equals(c.name()) && p.success()) {
                        n[mi]++;
                    }
                }
            }
            per.add(c.name() + " " + n[0] + (n.length > 1 ? "/" + n[1] : ""));
        }
        md.append(String.join(", ", per)).append(".\n\n");
        md.append("Ten operator examples, the first five successes and five failures in suite order (for a success, "
                + "the smallest strength that succeeded; for a failure, strength 2):\n\n");
        md.append("| concept | prompt | λ | unsteered | steered | ppl ratio | counts |\n|---|---|---:|---|---|---:|---|\n");
        List<SteeringEval.Pair> pairs = eval.methods().get(0).details();
        List<SteeringEval.Pair> good = pairs.stream().filter(SteeringEval.Pair::success).limit(5).toList();
        List<SteeringEval.Pair> bad = pairs.stream().filter(p -> !p.success()).limit(10 - good.size()).toList();
        for (List<SteeringEval.Pair> group : List.of(good, bad)) {
            for (SteeringEval.Pair p : group) {
                double lambda = p.success() ? p.successStrength() : 2.0;
                SteeringEval.Try t = p.tries().stream().filter(x -> x.strength() == lambda).findFirst()
                        .orElse(p.tries().get(p.tries().size() / 2));
                md.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %.2f | %s |%n", p.concept(),
                        cell(p.prompt()), Publisher.num(t.strength()), cell(p.unsteered()), cell(t.text()), t.ratio(),
                        t.success() ? "yes: " + String.join(", ", t.newWords()) : "no" + why(t)));
            }
        }
        md.append('\n');
    }

    private static String why(SteeringEval.Try t) {
        List<String> r = new ArrayList<>();
        if (t.newWords().isEmpty()) {
            r.add("no new concept word");
        }
        if (t.ratio() > SteeringEval.MAX_PERPLEXITY_RATIO) {
            r.add("perplexity");
        }
        if (t.longestRun() >= SteeringEval.MAX_RUN) {
            r.add("a token " + t.longestRun() + "x in a row");
        }
        return r.isEmpty() ? "" : " (" + String.join("; ", r) + ")";
    }

    private static String cell(String s) {
        return s.replace("\n", " ⏎ ").replace("|", "\\|").strip();
    }

    // ---------------------------------------------------------------- directions and decoding

    static final List<String> DIRECTION_PROMPTS = List.of(
            "The old man walked down the road to the",
            "The bridge out of town is the",
            "She poured a cup of hot",
            "The children played in the snow and built a",
            "The ship sailed across the",
            "He played a song on the",
            "The dog barked at the",
            "In the morning, the farmer fed the",
            "The king lived in a big",
            "They sat by the fire and told");

    static void directionsSection(StringBuilder md, ArrayNode out, LanguageModel lm) {
        md.append("## Decoded directions\n\n");
        md.append("The detached Jacobian of each prompt (float32, the full method); for the last token's J_i, the first "
                + "left singular vector u_1 decoded through lm_head (signed so that <u_1, Σ J_i x_i> > 0), top five "
                + "whole-word tokens among its top 256 tokens, and the model's own next token.\n\n");
        md.append("| prompt | next token | σ₁ | top 5 whole words of u₁ | top 5 tokens of u₁ |\n|---|---|---:|---|---|\n");
        TokenDecoder decoder = new TokenDecoder(lm);
        Analysis.Options o = new Analysis.Options(Analysis.Method.FULL, DataType.FLOAT32, 4, new int[0],
                Target.Mode.CUMULATIVE, Target.Component.LAYER, false, 256L << 20, false);
        for (String p : DIRECTION_PROMPTS) {
            Analysis.Result r = Analysis.run(lm, lm.tokenizer().encode(p), o, decoder, Analysis.Progress.NONE);
            Analysis.TokenSpectrum last = r.perToken().get(r.perToken().size() - 1);
            Analysis.Direction u1 = last.u().get(0);
            List<String> words = u1.words().stream().limit(5).map(s -> s.token().strip()).toList();
            List<String> toks = u1.tokens().stream().limit(5).map(s -> "`" + s.token().replace("|", "\\|") + "`")
                    .toList();
            ObjectNode row = out.addObject();
            row.put("prompt", p);
            row.put("next", r.prediction().model().text());
            row.put("sigma1", u1.sigma());
            row.set("words", JSON.valueToTree(words));
            md.append(String.format(Locale.ROOT, "| %s | `%s` | %.3f | %s | %s |%n", p, r.prediction().model().text(),
                    u1.sigma(), String.join(", ", words), String.join(" ", toks)));
        }
        md.append('\n');
    }

    static void controlsSection(StringBuilder md, ArrayNode out, LanguageModel lm) {
        md.append("## Greedy text with repetition controls\n\n");
        md.append("The card's prompts again, greedy, 40 new tokens, with `repetitionPenalty` 1.2 and "
                + "`noRepeatNgramSize` 3 (Hugging Face semantics; the API and the pages take both).\n\n");
        GenerationParams p = new GenerationParams(40, 0, 0, 1, 0, 1.2, 3);
        for (String prompt : Publisher.PROMPTS) {
            Generation g = Generator.generate(lm, lm.tokenizer().encode(prompt), p, Hooks.NONE);
            ObjectNode row = out.addObject();
            row.put("prompt", prompt);
            row.put("completion", g.completion());
            md.append("- **").append(prompt).append("**").append(cell(g.completion())).append('\n');
        }
        md.append('\n');
    }
}
