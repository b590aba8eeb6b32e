package lab.steering.bench;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lab.steering.eval.MiniLmEmbedder;
import lab.steering.eval.SteeringBenchmark;
import lab.steering.generate.BatchDecoder;
import lab.steering.model.LanguageModel;
import lab.steering.steer.EvalSuite;
import lab.steering.steer.TextScores;

/**
 * The steering benchmark of issue 14 from the command line ({@link SteeringBenchmark}), the same engine the app's
 * evaluations run:
 * <pre>scripts/bench.sh steering-benchmark [--model DIR] [--suite FILE] [--concepts N] [--prompts N]
 *      [--methods none,prompting,actadd,operator,operator-lowrank] [--strengths 1,2,4] [--layers 4]
 *      [--tokens 24] [--temperature 0] [--seed 7] [--select 0.3] [--rank 8] [--resamples 1000] [--batch 32]
 *      [--json OUT]</pre>
 * {@code --batch N}: each group of continuations (a concept's unsteered, prompted or steered ones) is submitted at
 * once to a batched decoder with N places (0: one at a time, unbatched); tokens are the same either way, scores equal
 * to float rounding, and two runs with the same N give the same numbers to the last bit.
 * Prints the per-method table (markdown, the report prompts at each method's chosen setting, 95% bootstrap intervals
 * over concepts) and the selection grid; {@code --json} writes the whole result, every output included.
 */
public final class SteeringBenchmarkRun {

    private SteeringBenchmarkRun() {
    }

    public static void main(String[] args) throws IOException {
        System.setProperty("ai.djl.offline", "true");
        Map<String, String> a = SteeringEvaluation.args(args);
        Path folder = Path.of(a.getOrDefault("model", "models/steering-lab-base"));
        EvalSuite suite = SteeringEvaluation.suite(a);
        List<Double> strengths = SteeringEvaluation.numbers(a.getOrDefault("strengths", "1,2,4"));
        List<Integer> layers = new ArrayList<>();
        if (a.containsKey("layers")) {
            for (String s : a.get("layers").split(",")) {
                layers.add(Integer.parseInt(s.trim()));
            }
        }
        SteeringBenchmark.Settings settings = new SteeringBenchmark.Settings(
                List.of(a.getOrDefault("methods", String.join(",", SteeringBenchmark.METHODS)).split(",")),
                strengths, layers, Integer.parseInt(a.getOrDefault("tokens", "24")),
                Double.parseDouble(a.getOrDefault("temperature", "0")), Long.parseLong(a.getOrDefault("seed", "7")),
                Double.parseDouble(a.getOrDefault("select", "0.3")), Integer.parseInt(a.getOrDefault("rank", "8")),
                Integer.parseInt(a.getOrDefault("resamples", "1000")));
        int batch = Integer.parseInt(a.getOrDefault("batch", "32")); // places of the batched decoder; 0: unbatched
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu());
             BatchDecoder decoder = batch < 2 ? null : new BatchDecoder(m, batch, 1 << 20)) {
            SteeringBenchmark.Decoder dec = decoder == null ? SteeringBenchmark.sequentialDecoder(m)
                    : SteeringBenchmark.decoder(m, decoder::runAll);
            SteeringBenchmark.Result r = SteeringBenchmark.run(m, suite, settings, MiniLmEmbedder.shared(), dec,
                    Runtime.getRuntime().availableProcessors(),
                    (stage, f) -> System.err.printf(Locale.ROOT, "\r%3.0f%% %-90.90s", 100 * f, stage));
            System.err.println();
            System.out.printf(Locale.ROOT, "model %s, suite %s (%d concepts x %d prompts: %s choose, %s reported),"
                            + " layers %s, strengths %s, %d new tokens, temperature %s, seed %d, rank %d, %s, %.0f s%n",
                    r.model(), suite.name(), suite.concepts().size(), suite.prompts().size(), r.selectPrompts(),
                    r.reportPrompts(), r.layers(), strengths, settings.maxNewTokens(), settings.temperature(),
                    settings.seed(), settings.rank(), r.embedder(), r.seconds());
            System.out.println(table(r));
            System.out.println("selection grid (mean over the selection prompts; * = chosen):");
            for (SteeringBenchmark.GridPoint g : r.grid()) {
                System.out.printf(Locale.ROOT, "  %-17s strength %-5s layer %-4s concept %.3f fluency %.3f"
                                + " relevance %.3f aggregate %.3f %s%n", g.method(), g.strength(), g.layer(),
                        g.concept(), g.fluency(), g.promptRelevance(), g.aggregate(), g.chosen() ? "*" : "");
            }
            if (a.containsKey("json")) {
                try (Writer w = Files.newBufferedWriter(Path.of(a.get("json")))) {
                    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(w, r);
                }
            }
        }
    }

    /** The per-method table in markdown: mean [95% interval] over concepts. */
    static String table(SteeringBenchmark.Result r) {
        String[] keys = {"aggregate", "concept", "fluency", "promptRelevance", "hits", "conceptLogProb",
            "conceptSimilarity", "perplexity", "repetition", "distinct2", "relevance"};
        StringBuilder b = new StringBuilder("| method | strength | layer | outputs |");
        for (String k : keys) {
            b.append(' ').append(k).append(" |");
        }
        b.append("\n|---|---|---|---|").append("---|".repeat(keys.length)).append('\n');
        for (SteeringBenchmark.MethodSummary s : r.methods()) {
            b.append(String.format(Locale.ROOT, "| %s | %s | %s | %d |", s.method(),
                    s.strength() == null ? "-" : s.strength(), s.layer() == null ? "-" : s.layer(), s.outputs()));
            for (String k : keys) {
                TextScores.Interval i = s.scores().get(k);
                b.append(i == null ? " - |" : String.format(Locale.ROOT, " %.3f [%.3f, %.3f] |", i.mean(), i.low(),
                        i.high()));
            }
            b.append('\n');
        }
        return b.toString();
    }
}
