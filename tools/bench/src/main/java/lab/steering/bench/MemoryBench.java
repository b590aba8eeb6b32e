package lab.steering.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.jacobian.LowRank;
import lab.steering.jacobian.Target;
import lab.steering.model.LanguageModel;
import lab.steering.model.WeightStorage;

/**
 * Resident memory and speed of one model loaded with one {@link WeightStorage} (one per JVM, so that the resident
 * sizes are the process's own): {@code scripts/bench.sh memory <model folder> compact|float32 [top-k]}. Prints the
 * resident set (VmRSS) before and after the load, 16 greedy tokens/s after an 8-token prompt (ids from the middle of
 * the vocabulary) with a hash of its logits (equal hashes: bit-identical logits), and with an argument k the
 * matrix-free top-k of the output's detached Jacobian; the peak (VmHWM) after each.
 */
public final class MemoryBench {

    public static void main(String[] args) throws IOException {
        System.setProperty("ai.djl.offline", "true");
        Path folder = Path.of(args[0]);
        WeightStorage storage = WeightStorage.parse(args[1]);
        long before = status("VmRSS");
        long t0 = System.nanoTime();
        try (LanguageModel model = LanguageModel.load(folder, Device.cpu(), DataType.FLOAT32, DataType.FLOAT32,
                storage)) {
            double loadS = (System.nanoTime() - t0) / 1e9;
            System.gc();
            System.out.printf(Locale.ROOT, "%s %s: load %.1f s, weights %.0f MB, RSS %.0f MB before, %.0f MB loaded"
                    + " (anonymous %.0f MB; the rest is the checkpoint's mapped pages until they are unmapped)%n",
                    folder.getFileName(), storage, loadS, model.weightBytes() / 1048576.0, mb(before),
                    mb(status("VmRSS")), mb(status("RssAnon")));
            long[] prompt = new long[8];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = model.config().vocabSize() / 2 + 97L * i;
            }
            Generator.generate(model, prompt, GenerationParams.greedy(2), Hooks.NONE, true, false, t -> { });
            Generation g = Generator.generate(model, prompt, GenerationParams.greedy(16), Hooks.NONE, true, false,
                    t -> { });
            int hash;
            try (NDManager m = model.manager().newSubManager()) {
                hash = Arrays.hashCode(Generator.lastLogits(model.transformer(), m, prompt, null, Hooks.NONE));
            }
            System.out.printf(Locale.ROOT, "generation: prompt %.0f ms, %.2f tokens/s (%.0f ms/token), ids %s,"
                    + " logits hash %08x; RSS %.0f MB (anonymous %.0f MB), peak %.0f MB%n", g.promptMs(),
                    1000 / g.perTokenMs(), g.perTokenMs(), g.tokens().stream().map(t -> t.id()).toList(), hash,
                    mb(status("VmRSS")), mb(status("RssAnon")), mb(status("VmHWM")));
            if (args.length > 2) {
                int k = Integer.parseInt(args[2]);
                long t1 = System.nanoTime();
                LowRank.Result r = LowRank.topK(model, prompt, DataType.FLOAT32,
                        Target.output(model.config().numLayers()), LowRank.Settings.of(k));
                System.out.printf(Locale.ROOT, "matrix-free top-%d: %.1f s, combined %s, %s; peak RSS %.0f MB%n", k,
                        (System.nanoTime() - t1) / 1e9, Arrays.toString(r.combined().singularValues()), r.stats(),
                        mb(status("VmHWM")));
            }
        }
    }

    /** A field of /proc/self/status in bytes (VmRSS: resident now, VmHWM: the peak). */
    static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        throw new IOException(field + " not in /proc/self/status");
    }

    private static double mb(long bytes) {
        return bytes / 1048576.0;
    }
}
