package lab.steering.bench;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lab.steering.generate.BatchDecoder;
import lab.steering.generate.DecodeDriver;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import lab.steering.steer.EvalSuite;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.SteeringEval;

/**
 * The steering evaluation of issue 19 from the command line ({@link SteeringEval}):
 * <pre>scripts/bench.sh steering-eval [--model DIR] [--suite FILE] [--concepts N] [--prompts N] [--layer L]
 *      [--batch 32 (places of a batched decoder; 0: one continuation at a time, the same tokens)]
 *      [--strengths 0.5,1,2,3,4] [--tokens 32] [--repetition-penalty 1] [--no-repeat-ngram 0] [--json OUT]</pre>
 * Greedy decoding. Prints each method's share of successful pairs and, with {@code --json}, writes the whole report
 * (every continuation) there.
 */
public final class SteeringEvaluation {

    private SteeringEvaluation() {
    }

    /** "--key value" pairs. */
    static Map<String, String> args(String[] args) {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        return a;
    }

    /** --suite FILE (default: the shipped suite), cut to --concepts and --prompts. */
    static EvalSuite suite(Map<String, String> a) {
        EvalSuite suite = a.containsKey("suite") ? EvalSuite.read(Path.of(a.get("suite"))) : EvalSuite.defaultSuite();
        return suite.first(Integer.parseInt(a.getOrDefault("concepts", "1000")),
                Integer.parseInt(a.getOrDefault("prompts", "1000")));
    }

    /** Comma-separated numbers. */
    static List<Double> numbers(String list) {
        List<Double> out = new ArrayList<>();
        for (String s : list.split(",")) {
            out.add(Double.parseDouble(s.trim()));
        }
        return out;
    }

    public static void main(String[] args) throws IOException {
        System.setProperty("ai.djl.offline", "true");
        Map<String, String> a = args(args);
        Path folder = Path.of(a.getOrDefault("model", "models/steering-lab-base"));
        EvalSuite suite = suite(a);
        List<Double> strengths = numbers(a.getOrDefault("strengths", "0.5,1,2,3,4"));
        GenerationParams params = new GenerationParams(Integer.parseInt(a.getOrDefault("tokens", "32")), 0, 0, 1, 0,
                Double.parseDouble(a.getOrDefault("repetition-penalty", "1")),
                Integer.parseInt(a.getOrDefault("no-repeat-ngram", "0")));
        List<String> methods = List.of(a.getOrDefault("methods", String.join(",", SteeringEval.METHODS)).split(","));
        int batch = Integer.parseInt(a.getOrDefault("batch", "32")); // places of a batched decoder; 0: unbatched
        try (LanguageModel m = LanguageModel.load(folder, Device.cpu());
             BatchDecoder decoder = batch < 2 ? null : new BatchDecoder(m, batch, 1 << 20)) {
            java.util.function.Consumer<SteeredRun.Decoding[]> runner = ds -> {
                if (decoder == null) {
                    for (SteeredRun.Decoding d : ds) {
                        DecodeDriver.alone(m, d);
                    }
                    return;
                }
                decoder.runAll(ds);
            };
            SteeringEval.Report r = SteeringEval.run(m, suite,
                    new SteeringEval.Settings(methods, strengths,
                            a.containsKey("layer") ? Integer.valueOf(a.get("layer")) : null, params), runner,
                    (stage, f) -> System.err.printf(Locale.ROOT, "\r%3.0f%% %-80.80s", 100 * f, stage));
            System.err.println();
            System.out.printf(Locale.ROOT, "model %s, suite %s (%d concepts x %d prompts), layer %d, strengths %s,"
                            + " %d new tokens, repetition penalty %s, no-repeat n-gram %d, %.0f s%n", r.model(),
                    r.suite(), suite.concepts().size(), suite.prompts().size(), r.layer(), strengths,
                    params.maxNewTokens(), params.repetitionPenalty(), params.noRepeatNgramSize(), r.seconds());
            for (SteeringEval.MethodResult mr : r.methods()) {
                System.out.printf(Locale.ROOT, "%-9s %3d / %3d pairs = %5.1f%%   (by chance: %5.1f%%)%n", mr.method(),
                        mr.successes(), mr.pairs(), 100 * mr.rate(), 100 * mr.chance());
            }
            if (a.containsKey("json")) {
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                        .writeValue(Files.newBufferedWriter(Path.of(a.get("json"))), r);
            }
        }
    }
}
