package lab.steering.bench;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;

/**
 * Generation throughput, with and without the KV cache, at short and long context, in one run:
 * {@code scripts/bench.sh generation [model folders...]}. Prints a Markdown table and the ratios.
 * Prompts are real tokens of the model's vocabulary (ids cycled from the middle of the vocabulary) so that
 * lengths are exact; EOS does not stop the runs.
 */
public final class GenerationBench {

    private static final int NEW_TOKENS = 32;
    private static final int REPEATS = 3;

    record Row(String model, int context, String mode, double promptTokPerS, double genTokPerS, double msPerToken) {
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", "true");
        List<Path> folders = new ArrayList<>();
        for (String a : args) {
            folders.add(Path.of(a));
        }
        if (folders.isEmpty()) {
            throw new IllegalArgumentException("usage: GenerationBench <model folder>...");
        }
        List<Row> rows = new ArrayList<>();
        for (Path folder : folders) {
            if (!Files.isDirectory(folder)) {
                System.err.println("skipped (absent): " + folder);
                continue;
            }
            try (LanguageModel model = LanguageModel.load(folder, Device.cpu())) {
                int ctx = model.config().maxPositions();
                int longPrompt = Math.min(512, ctx) - NEW_TOKENS;
                run(model, 32, true); // warm-up (JIT, allocator)
                run(model, 32, false);
                for (int prompt : new int[] {32, longPrompt}) {
                    rows.add(best(model, prompt, true));
                    rows.add(best(model, prompt, false));
                }
            }
        }
        print(rows);
    }

    private static Row best(LanguageModel model, int promptLen, boolean cache) {
        Row best = null;
        for (int r = 0; r < REPEATS; r++) {
            Row row = run(model, promptLen, cache);
            if (best == null || row.msPerToken() < best.msPerToken()) {
                best = row;
            }
        }
        return best;
    }

    private static Row run(LanguageModel model, int promptLen, boolean cache) {
        long[] prompt = new long[promptLen];
        int v = model.config().vocabSize();
        for (int i = 0; i < promptLen; i++) {
            prompt[i] = v / 2 + (i * 7L) % (v / 4);
        }
        GenerationParams p = GenerationParams.greedy(NEW_TOKENS);
        Generation g = Generator.generate(model, prompt, p, Hooks.NONE, cache, false, t -> { });
        return new Row(model.id(), promptLen + NEW_TOKENS, cache ? "kv-cache" : "re-encode",
                promptLen / (g.promptMs() / 1000), 1000 / g.perTokenMs(), g.perTokenMs());
    }

    private static void print(List<Row> rows) {
        System.out.println("| model | context (prompt + 32 new) | mode | prompt tok/s | generated tok/s | ms/token |");
        System.out.println("|---|---|---|---|---|---|");
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "| %s | %d | %s | %.0f | %.1f | %.2f |%n", r.model(), r.context(), r.mode(),
                    r.promptTokPerS(), r.genTokPerS(), r.msPerToken());
        }
        System.out.println();
        System.out.println("| model | cache speed-up at short ctx | cache speed-up at long ctx | "
                + "ms/token long/short (cache) | ms/token long/short (re-encode) |");
        System.out.println("|---|---|---|---|---|");
        for (int i = 0; i + 3 < rows.size(); i += 4) {
            Row sc = rows.get(i);
            Row sn = rows.get(i + 1);
            Row lc = rows.get(i + 2);
            Row ln = rows.get(i + 3);
            System.out.printf(Locale.ROOT, "| %s | %.1fx | %.1fx | %.2f | %.2f |%n", sc.model(),
                    sn.msPerToken() / sc.msPerToken(), ln.msPerToken() / lc.msPerToken(),
                    lc.msPerToken() / sc.msPerToken(), ln.msPerToken() / sn.msPerToken());
        }
    }
}
