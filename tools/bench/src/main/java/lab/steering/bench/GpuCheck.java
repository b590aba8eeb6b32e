package lab.steering.bench;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.jacobian.JacobianEngine;
import lab.steering.jacobian.JacobianStack;
import lab.steering.jacobian.LowRank;
import lab.steering.jacobian.Target;
import lab.steering.model.KvCache;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelConfig;
import lab.steering.model.Weights;
import lab.steering.service.device.DevicePolicy;
import lab.steering.service.device.DeviceProbe;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.SteeringOperator;
import lab.steering.train.Llama;

/**
 * The prepared GPU check ({@code scripts/gpu-check.sh}): CPU against GPU on real models (logits, Jacobians, steered
 * tokens), then timings at Llama-3.2-3B shapes with random weights made on the device (full detached Jacobian of 8
 * tokens in float32, matrix-free top-k of a 128-token prompt, generation tokens/s plain and steered). Prints one
 * JSON report on stdout. {@code --cpu --small} runs the same code on the CPU at reduced shapes (the smoke test).
 *
 * <pre>
 * GpuCheck [--cpu] [--small] [--dtype bf16|f16|f32] [--budget-seconds N] [--tests JSON] [model folder ...]
 * </pre>
 */
public final class GpuCheck {

    private GpuCheck() {
    }

    /** Llama-3.2-3B's shapes (config.json of meta-llama/Llama-3.2-3B), or a small stand-in for the CPU smoke run. */
    static ModelConfig shapes(boolean small) {
        ModelConfig.RopeScaling llama3 = new ModelConfig.RopeScaling("llama3", 32, 1, 4, 8192);
        return small
                ? Llama.config(256, 688, 4, 8, 4, 32, 8192, 2048, 1e-5, 500000, llama3, true, 0, List.of(1),
                        "float32")
                : Llama.config(3072, 8192, 28, 24, 8, 128, 128256, 131072, 1e-5, 500000, llama3, true, 128000,
                        List.of(128001), "bfloat16");
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", "true");
        boolean cpu = false;
        boolean small = false;
        String dtypeSetting = "bf16";
        double budget = 420;
        String tests = null;
        List<Path> folders = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--cpu" -> cpu = true;
                case "--small" -> small = true;
                case "--dtype" -> dtypeSetting = args[++i];
                case "--budget-seconds" -> budget = Double.parseDouble(args[++i]);
                case "--tests" -> tests = args[++i];
                default -> folders.add(Path.of(args[i]));
            }
        }
        long start = System.nanoTime();
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        Map<String, Object> report = new LinkedHashMap<>();
        int gpus = Engine.getInstance().getGpuCount();
        Device device = cpu ? Device.cpu() : Device.gpu(0);
        if (!cpu && gpus == 0) {
            report.put("error", "no GPU visible to DJL (built with -Pgpu? driver visible?); use --cpu for the smoke run");
            System.out.println(json.writeValueAsString(report));
            System.exit(2);
        }
        // The low-precision generation dtype: LAB_GPU_DTYPE on a GPU. On the CPU bfloat16 crashes DJL, so the smoke
        // run exercises the same path in float16.
        DataType low = DevicePolicy.parseGpuDtype(dtypeSetting);
        if (cpu && low == DataType.BFLOAT16) {
            low = DataType.FLOAT16;
        }
        Map<String, Object> dev = new LinkedHashMap<>();
        dev.put("device", device.toString());
        dev.put("gpusVisible", gpus);
        dev.put("name", cpu ? "cpu" : DeviceProbe.CUDA.name(device));
        DevicePolicy.Memory mem = cpu ? null : DeviceProbe.CUDA.memory(device);
        if (mem != null) {
            dev.put("memoryTotalMb", mem.totalBytes() >> 20);
            dev.put("memoryFreeMb", mem.freeBytes() >> 20);
        }
        dev.put("generationDtype", DevicePolicy.name(low));
        dev.put("engine", Engine.getInstance().getEngineName() + " " + Engine.getInstance().getVersion());
        dev.put("threads", System.getProperty("ai.djl.pytorch.num_threads", "default"));
        report.put("device", dev);
        report.put("mode", cpu ? "cpu-smoke" : "gpu");
        if (tests != null) {
            report.put("gpuTests", json.readTree(tests));
        }

        List<Object> comparisons = new ArrayList<>();
        for (Path folder : folders) {
            if (!Files.isRegularFile(folder.resolve("config.json"))) {
                comparisons.add(Map.of("model", folder.toString(), "skipped", "absent"));
                continue;
            }
            comparisons.add(compare(folder, device, low));
        }
        report.put("comparisons", comparisons);
        report.put("timings", timings(shapes(small), device, low, small, budget, start));
        report.put("totalSeconds", round((System.nanoTime() - start) / 1e9, 1));
        System.out.println(json.writeValueAsString(report));
    }

    // ------------------------------------------------------------------ CPU against the device on a real model

    static final String PROMPT = "Once upon a time, there was a little girl named Lily. She loved";
    static final String CONCEPT = "The dog barked at the cat in the garden";

    /**
     * One real model on the CPU in float32 (the reference) and on {@code device}: logits (float32 and the
     * low-precision decoder), the full detached Jacobian (float32 and float64 against the CPU's float64), greedy
     * tokens plain and steered (same operator, built on the CPU).
     */
    public static Map<String, Object> compare(Path folder, Device device, DataType low) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", folder.getFileName().toString());
        try (LanguageModel ref = LanguageModel.load(folder, Device.cpu());
             LanguageModel dev = LanguageModel.load(folder, device, DataType.FLOAT32, DataType.FLOAT32);
             LanguageModel devLow = LanguageModel.load(folder, device, DataType.FLOAT32, low)) {
            long[] ids = ref.tokenizer().encode(PROMPT);
            double[] want = Generator.allLogits(ref, ids, Hooks.NONE)[ids.length - 1];
            out.put("logitsFloat32RelMaxDiff", relMax(lastLogits(dev, ids), want));
            out.put("logitsLowRelMaxDiff", relMax(lastLogits(devLow, ids), want));

            long[] eight = java.util.Arrays.copyOf(ids, Math.min(8, ids.length));
            Target target = Target.output(ref.config().numLayers());
            JacobianStack j64 = JacobianEngine.full(ref, eight, DataType.FLOAT64, target, 256L << 20, r -> { });
            JacobianStack d32 = JacobianEngine.full(dev, eight, DataType.FLOAT32, target, 256L << 20, r -> { });
            JacobianStack d64 = JacobianEngine.full(dev, eight, DataType.FLOAT64, target, 256L << 20, r -> { });
            out.put("jacobianFloat32RelDiff", relFrobenius(d32.jacobian(), j64.jacobian()));
            out.put("jacobianFloat64RelDiff", relFrobenius(d64.jacobian(), j64.jacobian()));
            out.put("jacobianFloat32ReconstructionError", d32.relativeError());
            out.put("jacobianFloat64ReconstructionError", d64.relativeError());

            GenerationParams greedy = GenerationParams.greedy(24);
            long[] prompt = ref.tokenizer().encode("Once upon a time");
            long[] plainRef = tokens(Generator.generate(ref, prompt, greedy, Hooks.NONE).tokens());
            out.put("plainTokensFloat32Match", matching(plainRef,
                    tokens(Generator.generate(dev, prompt, greedy, Hooks.NONE).tokens())));
            out.put("plainTokensLowMatch", matching(plainRef,
                    tokens(Generator.generate(devLow, prompt, greedy, Hooks.NONE).tokens())));
            out.put("tokens", plainRef.length);
            long[] concept = ref.tokenizer().encode(CONCEPT);
            SteeringOperator op = OperatorBuilder.full(ref, concept, OperatorBuilder.defaultLayer(
                    ref.config().numLayers()), DataType.FLOAT32, r -> { });
            long[] steeredRef = steered(ref, prompt, greedy, op, concept);
            out.put("steeredTokensFloat32Match", matching(steeredRef, steered(dev, prompt, greedy, op, concept)));
            out.put("steeredTokensLowMatch", matching(steeredRef, steered(devLow, prompt, greedy, op, concept)));
            out.put("steeredDiffersFromPlain", !java.util.Arrays.equals(steeredRef, plainRef));
            out.putAll(batched(dev, prompt, greedy, op, concept));
        } catch (RuntimeException e) {
            out.put("error", e.toString());
        }
        return out;
    }

    /**
     * Batched decoding on the device (issue 15): plain and steered decodings of prompts of different lengths in one
     * {@link lab.steering.generate.BatchDecoder}, each against the same decoding run alone on the device: matching
     * greedy tokens (of all) and the largest log-probability difference.
     */
    static Map<String, Object> batched(LanguageModel m, long[] prompt, GenerationParams p, SteeringOperator op,
                                       long[] concept) {
        List<SteeredRun.Decoding> alone = new java.util.ArrayList<>();
        List<SteeredRun.Decoding> together = new java.util.ArrayList<>();
        String[] prompts = {"Once upon a time", PROMPT, "The dog"};
        double[] strengths = {0, 0.5, 1, 2};
        for (List<SteeredRun.Decoding> side : List.of(alone, together)) {
            for (String text : prompts) {
                long[] ids = m.tokenizer().encode(text);
                side.add(new SteeredRun.Decoding(m, ids, p, null, concept, 0, null));
                for (double s : strengths) {
                    side.add(new SteeredRun.Decoding(m, ids, p, nd -> new Injector(op, s, nd, DataType.FLOAT32),
                            concept, 0, null));
                }
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        try (lab.steering.generate.BatchDecoder b = new lab.steering.generate.BatchDecoder(m, 32, 64)) {
            for (SteeredRun.Decoding d : alone) {
                lab.steering.generate.DecodeDriver.alone(m, d);
            }
            b.submit(together.toArray(SteeredRun.Decoding[]::new)).get(10, java.util.concurrent.TimeUnit.MINUTES);
            int match = 0;
            int all = 0;
            double worst = 0;
            for (int i = 0; i < alone.size(); i++) {
                SteeredRun.Result a = alone.get(i).result();
                SteeredRun.Result t = together.get(i).result();
                long[] x = tokens(a.generation().tokens());
                match += matching(x, tokens(t.generation().tokens()));
                all += x.length;
                for (int k = 0; k < Math.min(a.steps().size(), t.steps().size()); k++) {
                    worst = Math.max(worst, Math.abs(a.steps().get(k).logprob() - t.steps().get(k).logprob()));
                }
            }
            out.put("batchedDecodings", alone.size());
            out.put("batchedTokensMatch", match);
            out.put("batchedTokens", all);
            out.put("batchedLogprobMaxDiff", worst);
        } catch (Exception e) {
            out.put("batchedError", e.toString());
        }
        return out;
    }

    static float[] lastLogits(LanguageModel m, long[] ids) {
        try (NDManager nd = m.manager().newSubManager()) {
            return Generator.lastLogits(m.decoder(), nd, ids, null, Hooks.NONE);
        }
    }

    static long[] steered(LanguageModel m, long[] prompt, GenerationParams p, SteeringOperator op, long[] concept) {
        return tokens(SteeredRun.run(m, prompt, p, nd -> new Injector(op, 1.0, nd, DataType.FLOAT32), concept, 0)
                .generation().tokens());
    }

    static long[] tokens(List<lab.steering.generate.GeneratedToken> t) {
        return t.stream().mapToLong(lab.steering.generate.GeneratedToken::id).toArray();
    }

    /** Length of the common prefix of two token lists (equal lists: their length). */
    public static int matching(long[] a, long[] b) {
        int n = 0;
        while (n < a.length && n < b.length && a[n] == b[n]) {
            n++;
        }
        return n;
    }

    static double relMax(float[] got, double[] want) {
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < want.length; i++) {
            diff = Math.max(diff, Math.abs(got[i] - want[i]));
            scale = Math.max(scale, Math.abs(want[i]));
        }
        return diff / Math.max(scale, 1e-300);
    }

    static double relFrobenius(double[][] got, double[][] want) {
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < want.length; i++) {
            for (int k = 0; k < want[i].length; k++) {
                double e = got[i][k] - want[i][k];
                diff += e * e;
                norm += want[i][k] * want[i][k];
            }
        }
        return Math.sqrt(diff / Math.max(norm, 1e-300));
    }

    // ------------------------------------------------------------------ timings at Llama-3.2-3B shapes

    /** Random weights of the given shapes on {@code device}, N(0, 0.02^2), norms 1: no download. */
    public static LanguageModel randomModel(ModelConfig c, Device device, DataType generation, long seed) {
        NDManager m = NDManager.newBaseManager(device);
        try {
            Engine.getInstance().setRandomSeed((int) seed);
            long d = c.hiddenSize();
            long q = (long) c.numHeads() * c.headDim();
            long kv = (long) c.numKvHeads() * c.headDim();
            long ff = c.intermediateSize();
            NDArray embed = rand(m, c.vocabSize(), d);
            List<Weights.Layer> layers = new ArrayList<>();
            for (int l = 0; l < c.numLayers(); l++) {
                layers.add(Llama.layer(m.ones(new Shape(d)), rand(m, q, d), rand(m, kv, d), rand(m, kv, d),
                        rand(m, d, q), m.ones(new Shape(d)), rand(m, ff, d), rand(m, ff, d), rand(m, d, ff)));
            }
            Weights w = Llama.weights(embed, List.copyOf(layers), m.ones(new Shape(d)), embed);
            return LanguageModel.inMemory(c.numLayers() + "x" + c.hiddenSize() + "-random", c, m, w, generation);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private static NDArray rand(NDManager m, long rows, long cols) {
        return m.randomNormal(0f, 0.02f, new Shape(rows, cols), DataType.FLOAT32);
    }

    static Map<String, Object> timings(ModelConfig c, Device device, DataType low, boolean small, double budget,
                                       long start) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("shapes", Map.of("d", c.hiddenSize(), "layers", c.numLayers(), "heads", c.numHeads(), "kvHeads",
                c.numKvHeads(), "ff", c.intermediateSize(), "vocab", c.vocabSize(), "tied", c.tieWordEmbeddings(),
                "parameters", c.parameterCount()));
        long t0 = System.nanoTime();
        try (LanguageModel m = randomModel(c, device, low, 1234)) {
            out.put("makeWeightsSeconds", round((System.nanoTime() - t0) / 1e9, 2));
            long chunk = device.isGpu() ? 2L << 30 : 256L << 20;
            Target target = Target.output(c.numLayers());
            long[] eight = ids(c, 8);

            // full detached Jacobian of 8 tokens, float32 (a 2-token warm-up first)
            JacobianEngine.full(m, java.util.Arrays.copyOf(eight, 2), DataType.FLOAT32, target, chunk, r -> { });
            t0 = System.nanoTime();
            JacobianStack j = JacobianEngine.full(m, eight, DataType.FLOAT32, target, chunk, r -> { });
            double js = (System.nanoTime() - t0) / 1e9;
            out.put("jacobian8Float32", Map.of("seconds", round(js, 3), "relativeError", j.relativeError(),
                    "gflops", round(JacobianBench.transposeFlops(c, 8, DataType.FLOAT32, chunk) / js / 1e9, 1)));

            // matrix-free top-8 of a 128-token prompt (32 in the small smoke run), when the rate just measured says
            // its planned work fits the budget
            int wanted = small ? 32 : 128;
            LowRank.Settings s = LowRank.Settings.of(8).withChunkBytes(device.isGpu() ? 4L << 30 : 256L << 20);
            // FLOP/s of the frozen network on this device
            double rate = JacobianBench.transposeFlops(c, 8, DataType.FLOAT32, chunk) / js;
            // the largest prompt (128, else 64, 32, 16 tokens) whose estimate, tripled, fits what is left of the budget
            int lrTokens = wanted;
            while (lrTokens > 16 && 3 * LowRank.flops(c, lrTokens, LowRank.plan(c, lrTokens, s)) / rate
                    > left(budget, start) - 60) {
                lrTokens /= 2;
            }
            double lrFlops = LowRank.flops(c, lrTokens, LowRank.plan(c, lrTokens, s));
            double lrGuess = lrFlops / rate;
            Map<String, Object> lr = new LinkedHashMap<>();
            lr.put("requestedTokens", wanted);
            lr.put("tokens", lrTokens);
            lr.put("k", 8);
            lr.put("estimatedSeconds", round(lrGuess, 1));
            if (3 * lrGuess < left(budget, start) - 60) {
                t0 = System.nanoTime();
                LowRank.Result r = LowRank.topK(m, ids(c, lrTokens), DataType.FLOAT32, target, s);
                double ls = (System.nanoTime() - t0) / 1e9;
                lr.put("seconds", round(ls, 2));
                lr.put("gflops", round(lrFlops / ls / 1e9, 1));
                lr.put("rounds", r.stats().rounds());
                lr.put("basis", r.stats().basis());
                lr.put("converged", r.stats().converged());
                lr.put("topCombinedSigma", r.combined().singularValues()[0]);
            } else {
                lr.put("skipped", "estimated time above the budget left");
            }
            out.put("lowRankTop8", lr);

            // generation tokens/s, greedy with the KV cache, plain and steered (full operator at 2L/3)
            int newTokens = small ? 32 : 64;
            long[] prompt = ids(c, 16);
            Map<String, Object> gen = new LinkedHashMap<>();
            gen.put("dtype", DevicePolicy.name(m.generationDataType()));
            gen.put("promptTokens", prompt.length);
            gen.put("newTokens", newTokens);
            decode(m, prompt, 4, null); // warm-up
            gen.put("plainTokensPerSecond", round(decode(m, prompt, newTokens, null), 1));
            if (left(budget, start) > 60) {
                long[] concept = ids(c, 4);
                t0 = System.nanoTime();
                SteeringOperator op = OperatorBuilder.full(m, concept, OperatorBuilder.defaultLayer(c.numLayers()),
                        DataType.FLOAT32, r -> { });
                gen.put("operatorBuildSeconds", round((System.nanoTime() - t0) / 1e9, 2));
                gen.put("steeredTokensPerSecond", round(decode(m, prompt, newTokens, op), 1));
            } else {
                gen.put("steered", "skipped: time budget");
            }
            out.put("generation", gen);
        } catch (RuntimeException | OutOfMemoryError e) {
            out.put("error", e.toString());
        }
        return out;
    }

    /**
     * Floating-point operations of {@link LowRank#topK} with {@code iterations} per-token and combined iterations,
     * p columns (Analysis.estimate's count: J V and J^T U for every token, then the concatenated matrix).
     */
    static double left(double budget, long start) {
        return budget - (System.nanoTime() - start) / 1e9;
    }

    /** Token ids spread over the vocabulary (random weights: any id will do, all distinct from BOS). */
    static long[] ids(ModelConfig c, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) {
            ids[i] = 2 + (i * 7919L) % (c.vocabSize() - 2);
        }
        return ids;
    }

    /** Greedy decoding by ids (no tokenizer); tokens per second of the steps after the prompt. */
    static double decode(LanguageModel m, long[] prompt, int steps, SteeringOperator op) {
        var tf = m.decoder();
        try (NDManager nd = m.manager().newSubManager();
             KvCache cache = new KvCache(nd, tf.config(), 1, prompt.length + steps, tf.dataType())) {
            Hooks hooks = op == null ? Hooks.NONE : new Injector(op, 1.0, nd, DataType.FLOAT32).hooks();
            float[] logits = Generator.lastLogits(tf, nd, prompt, cache, hooks);
            long t0 = System.nanoTime();
            for (int s = 0; s < steps; s++) {
                int next = 0;
                for (int i = 1; i < logits.length; i++) {
                    if (logits[i] > logits[next]) {
                        next = i;
                    }
                }
                logits = Generator.lastLogits(tf, nd, new long[] {next}, cache, hooks);
            }
            return steps / ((System.nanoTime() - t0) / 1e9);
        }
    }

    static double round(double x, int places) {
        double f = Math.pow(10, places);
        return Math.round(x * f) / f;
    }
}
