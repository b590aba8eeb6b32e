package lab.steering.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import lab.steering.model.ModelConfig;
import lab.steering.model.Transformer;

/**
 * Trains a Llama model from random initialisation on the cached token ids of a run folder (see {@link TokenData}):
 * random windows, next-token cross-entropy through the project's {@link lab.steering.model.Transformer}, backward
 * with DJL's PyTorch autograd, global-norm clipping, {@link AdamW}, linear warm-up and cosine decay, periodic
 * validation, atomic checkpoints and exact resumption.
 *
 * <pre>
 * java lab.steering.train.Trainer --out RUN [--train train.txt --valid valid.txt --tokenizer DIR]
 *      [--resume] [--max-minutes M] [--checkpoint-minutes 10] [--log-every 10] [--threads 2] [--init-from DIR]
 *      [--config file.properties] [--hidden 256 --layers 6 ... any {@link TrainingConfig} key]
 * </pre>
 * Without {@code --resume} an existing checkpoint is an error; with it, training continues from the checkpoint
 * (or starts when there is none). {@code --max-minutes} ends this invocation (with a checkpoint) after that much
 * wall time; the schedule is unaffected. SIGTERM / Ctrl-C write a checkpoint after the current step.
 * When the last step is done, the whole validation stream is evaluated and {@code RUN/final.json} written.
 */
public final class Trainer {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Computations of one step before a non-finite loss or gradient ends the run. */
    static final int MAX_ATTEMPTS = 3;

    /** Steps between explicit garbage collections (see the loop). */
    static final int GC_EVERY = 50;

    /** Settings of one invocation that do not change the result. */
    public record Options(int logEvery, double checkpointMinutes, double maxMinutes, int stopAtStep,
                          boolean shutdownHook, PrintStream log) {
        public static Options quiet() {
            return new Options(1_000_000, 0, 0, 0, false, new PrintStream(java.io.OutputStream.nullOutputStream()));
        }
    }

    /** How an invocation ended. */
    public record Result(int step, boolean finished, double lastTrainLoss, double lastValLoss) {
    }

    private final TrainingConfig cfg;
    private final TokenData.Tokens data;
    private final Path run;
    private final Options opt;
    private volatile boolean stopRequested;

    public Trainer(TrainingConfig cfg, TokenData.Tokens data, Path run, Options opt) {
        this.cfg = cfg;
        this.data = data;
        this.run = run;
        this.opt = opt;
    }

    public static void main(String[] args) throws Exception {
        TrainArgs a = TrainArgs.parse(args);
        Path run = Path.of(a.take("out", "target/train"));
        boolean resume = a.takeFlag("resume");
        int threads = Integer.parseInt(a.take("threads", "2"));
        Options opt = new Options(Integer.parseInt(a.take("log-every", "10")),
                Double.parseDouble(a.take("checkpoint-minutes", "10")),
                Double.parseDouble(a.take("max-minutes", "0")),
                Integer.parseInt(a.take("stop-at-step", "0")), true, System.out);
        String train = a.take("train", null);
        String valid = a.take("valid", null);
        String tokenizer = a.take("tokenizer", null);
        String configFile = a.take("config", null);
        String initFrom = a.take("init-from", null);
        TrainingConfig requested = TrainingConfig.DEFAULTS;
        if (configFile != null) {
            requested = requested.withProperties(Path.of(configFile));
        }
        requested = requested.with(a.rest());
        setUpEngine(threads);

        TokenData.Tokens data;
        if (train != null) {
            data = TokenData.prepare(Path.of(train), Path.of(valid), Path.of(tokenizer), run);
        } else {
            data = TokenData.load(run);
        }
        if (requested.vocabSize() == 0) {
            requested = requested.withVocabSize(data.vocabSize());
        }
        TrainingConfig cfg = requested;
        if (Checkpoint.exists(run)) {
            if (!resume) {
                throw new IllegalStateException(Checkpoint.file(run) + " exists: pass --resume to continue it, "
                        + "or use another --out");
            }
            TrainingConfig saved = TrainingConfig.fromJson(Checkpoint.load(run).state().get("config"));
            List<String> diff = saved.differences(cfg);
            if (!diff.isEmpty()) {
                throw new IllegalStateException("the checkpoint in " + run + " was trained with other settings "
                        + diff + "; resume with the same settings or use another --out");
            }
        }
        Trainer trainer = new Trainer(cfg, data, run, opt);
        if (initFrom != null) {
            trainer.initFrom = Path.of(initFrom);
        }
        Result r = trainer.run();
        System.out.printf("Trainer: %s at step %d/%d%n", r.finished() ? "finished" : "stopped (rerun with --resume)",
                r.step(), cfg.steps());
    }

    /** PyTorch thread counts (before the engine loads), offline mode and quiet DJL logging. */
    public static void setUpEngine(int threads) {
        System.setProperty("ai.djl.offline", "true");
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
        System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
        Engine.getEngine("PyTorch");
    }

    /** Trains from the run folder's checkpoint (or from scratch) until the end, a stop request or the time limit. */
    public Result run() throws IOException {
        CountDownLatch done = new CountDownLatch(1);
        Thread hook = null;
        if (opt.shutdownHook()) {
            hook = new Thread(() -> {
                stopRequested = true;
                try {
                    done.await(120, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "checkpoint-on-exit");
            Runtime.getRuntime().addShutdownHook(hook);
        }
        try (NDManager root = NDManager.newBaseManager(Device.cpu())) {
            return loop(root);
        } finally {
            done.countDown();
        }
    }

    private Result loop(NDManager root) throws IOException {
        ModelConfig mc = cfg.modelConfig(data.bos(), data.eos());
        TrainModel model;
        AdamW adam;
        int step = 0;
        long tokensSeen = 0;
        double trainSeconds = 0;
        ArrayNode history = JSON.createArrayNode();
        if (Checkpoint.exists(run)) {
            Checkpoint.Loaded ck = Checkpoint.load(run);
            model = TrainModel.of(mc, ck.params(), root);
            adam = newAdam(model, root);
            JsonNode st = ck.state();
            step = st.get("step").asInt();
            adam.restore(st.get("adamSteps").asLong(), ck.first(), ck.second());
            tokensSeen = st.get("tokensSeen").asLong();
            trainSeconds = st.get("trainSeconds").asDouble();
            if (st.has("validation")) {
                history = (ArrayNode) st.get("validation");
            }
            opt.log().printf("resumed %s at step %d (%,d tokens seen, %s trained)%n", Checkpoint.file(run), step,
                    tokensSeen, clock(trainSeconds));
            ObjectNode r = JSON.createObjectNode();
            r.put("step", step);
            r.put("note", "resumed from the checkpoint: records after this step that precede this line are superseded");
            metrics("resume", r);
        } else if (initFrom != null) {
            // a new phase from a published model (a warm restart: its weights, fresh AdamW moments, a new schedule)
            model = TrainModel.of(mc, publishedWeights(initFrom, mc), root);
            adam = newAdam(model, root);
            opt.log().printf("new run in %s from the weights of %s: %,d parameters, %,d train / %,d validation tokens,"
                    + " %,d tokens per step%n", run, initFrom, model.parameterCount(), data.train().length,
                    data.valid().length, cfg.tokensPerStep());
            opt.log().println("config " + cfg.toJson());
            ObjectNode r = JSON.createObjectNode();
            r.put("initFrom", initFrom.toString());
            metrics("init", r);
        } else {
            model = TrainModel.init(mc, cfg.seed(), root);
            adam = newAdam(model, root);
            opt.log().printf("new run in %s: %,d parameters, %,d train / %,d validation tokens, %,d tokens per step%n",
                    run, model.parameterCount(), data.train().length, data.valid().length, cfg.tokensPerStep());
            opt.log().println("config " + cfg.toJson());
        }
        Files.createDirectories(run);
        LinkedHashMap<String, NDArray> params = model.parameters();

        long invocationStart = System.nanoTime();
        long lastCheckpoint = System.nanoTime();
        double lastVal = history.isEmpty() ? Double.NaN : history.get(history.size() - 1).get("loss").asDouble();
        int lastValStep = history.isEmpty() ? -1 : history.get(history.size() - 1).get("step").asInt();
        double lastEvalSeconds = 0;
        double windowLoss = 0;
        double windowSeconds = 0;
        int windowSteps = 0;
        long windowCpu = cpuNanos();
        double lastTrain = Double.NaN;
        double lastNorm = 0;
        long[] windows = new long[cfg.batch() * (cfg.context() + 1)];
        boolean finished = false;

        while (true) {
            if (step >= cfg.steps()) {
                finished = true;
                break;
            }
            if (stopRequested || (opt.stopAtStep() > 0 && step >= opt.stopAtStep())
                    || (opt.maxMinutes() > 0 && (System.nanoTime() - invocationStart) / 6e10 >= opt.maxMinutes())) {
                break;
            }
            long t0 = System.nanoTime();
            double lr = cfg.learningRate(step);
            double loss = Double.NaN;
            boolean finite = false;
            // A non-finite loss or gradient skips the update (parameters and moments untouched) and the step is
            // computed again from the same windows. In the first run one step gave NaN once, and the same step
            // replayed from the checkpoint was finite: a transient fault, not a divergence.
            for (int attempt = 1; attempt <= MAX_ATTEMPTS && !finite; attempt++) {
                loss = 0;
                try (NDScope stepScope = new NDScope()) {
                    stepScope.suppressNotUsedWarning();
                    for (int micro = 0; micro < cfg.accum(); micro++) {
                        TokenData.sampleWindows(data.train(), cfg.context(), cfg.seed(), step, micro, cfg.batch(),
                                windows);
                        try (NDManager m = root.newSubManager(); NDScope scope = new NDScope();
                             GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                            scope.suppressNotUsedWarning();
                            NDArray ids = m.create(windows, new Shape(cfg.batch(), cfg.context() + 1));
                            NDArray l = model.loss(ids);
                            gc.backward(cfg.accum() == 1 ? l : l.div(Transformer.scalar(l, cfg.accum())));
                            loss += l.getFloat() / cfg.accum();
                        }
                    }
                    Map<String, NDArray> grads = new LinkedHashMap<>();
                    params.forEach((name, p) -> grads.put(name, p.getGradient()));
                    lastNorm = clipGlobalNorm(grads, cfg.clip());
                    finite = Double.isFinite(loss) && Double.isFinite(lastNorm);
                    if (finite) {
                        adam.step(params, grads, lr);
                    }
                    zero(grads.values()); // PyTorch accumulates into .grad: clear it for the next step
                }
                if (!finite) {
                    opt.log().printf(java.util.Locale.ROOT, "non-finite loss %s / gradient norm %s at step %d "
                            + "(attempt %d of %d): update skipped%n", loss, lastNorm, step, attempt, MAX_ATTEMPTS);
                    ObjectNode bad = JSON.createObjectNode();
                    bad.put("step", step);
                    bad.put("attempt", attempt);
                    bad.put("loss", Double.toString(loss));
                    bad.put("gradNorm", Double.toString(lastNorm));
                    metrics("nonfinite", bad);
                }
            }
            if (!finite) {
                throw new IllegalStateException("loss " + loss + ", gradient norm " + lastNorm + " at step " + step
                        + " in " + MAX_ATTEMPTS + " attempts (lr " + lr + "): lower --peak-lr or resume from the checkpoint");
            }
            step++;
            tokensSeen += cfg.tokensPerStep();
            double dt = (System.nanoTime() - t0) / 1e9;
            trainSeconds += dt;
            windowLoss += loss;
            windowSeconds += dt;
            windowSteps++;
            lastTrain = loss;

            if (step % GC_EVERY == 0) {
                // DJL passes arrays made from Java data (ids, RoPE tables, masks) through direct ByteBuffers whose
                // native memory is freed only when the GC collects them; the heap is small and rarely collected,
                // so without this the RSS grew by ~1-3 MB per step. A collection of this heap takes milliseconds.
                System.gc();
            }
            boolean evalNow = step % cfg.evalEvery() == 0 || step == cfg.steps();
            if (evalNow) {
                long e0 = System.nanoTime();
                double[] nll = TrainModel.streamNll(model.transformer(), root, data.valid(), cfg.context(),
                        cfg.batch(), cfg.evalWindows());
                lastEvalSeconds = (System.nanoTime() - e0) / 1e9;
                trainSeconds += lastEvalSeconds;
                lastVal = nll[0] / nll[1];
                lastValStep = step;
                ObjectNode v = history.addObject();
                v.put("step", step);
                v.put("loss", lastVal);
                v.put("tokens", (long) nll[1]);
                v.put("trainLoss", windowSteps > 0 ? windowLoss / windowSteps : lastTrain);
                v.put("tokensSeen", tokensSeen);
                v.put("trainSeconds", trainSeconds);
                metrics("val", v);
            }
            if (step % opt.logEvery() == 0 || evalNow || step == cfg.steps()) {
                double tokPerSec = windowSeconds > 0 ? windowSteps * cfg.tokensPerStep() / windowSeconds : 0;
                double secPerStep = windowSteps > 0 ? windowSeconds / windowSteps : 0;
                int left = cfg.steps() - step;
                double eta = left * secPerStep + (double) left / cfg.evalEvery() * lastEvalSeconds;
                long cpuNow = cpuNanos();
                double cpuPerStep = (cpuNow - windowCpu) / 1e9 / Math.max(1, windowSteps);
                windowCpu = cpuNow;
                String line = String.format(java.util.Locale.ROOT,
                        "step %d/%d | %.0f tok/s | train %.4f | val %s | lr %.2e | gnorm %.2f | elapsed %s | eta %s"
                                + " | cpu %.1f s/step | rss %s",
                        step, cfg.steps(), tokPerSec, windowLoss / Math.max(1, windowSteps),
                        Double.isNaN(lastVal) ? "-" : String.format(java.util.Locale.ROOT, "%.4f @%d", lastVal, lastValStep),
                        lr, lastNorm, clock(trainSeconds), clock(eta), cpuPerStep, rss());
                opt.log().println(line);
                ObjectNode mline = JSON.createObjectNode();
                mline.put("step", step);
                mline.put("trainLoss", windowLoss / Math.max(1, windowSteps));
                mline.put("tokPerSec", tokPerSec);
                mline.put("lr", lr);
                mline.put("gradNorm", lastNorm);
                mline.put("cpuSecondsPerStep", cpuPerStep);
                mline.put("trainSeconds", trainSeconds);
                metrics("train", mline);
                windowLoss = 0;
                windowSeconds = 0;
                windowSteps = 0;
            }
            if (opt.checkpointMinutes() > 0 && (System.nanoTime() - lastCheckpoint) / 6e10 >= opt.checkpointMinutes()) {
                save(params, adam, step, tokensSeen, trainSeconds, history, mc);
                lastCheckpoint = System.nanoTime();
            }
        }
        if (opt.checkpointMinutes() > 0 || finished || opt.stopAtStep() > 0) {
            save(params, adam, step, tokensSeen, trainSeconds, history, mc);
        }
        if (finished && !Files.isRegularFile(run.resolve("final.json"))) {
            long e0 = System.nanoTime();
            double[] nll = TrainModel.streamNll(model.transformer(), root, data.valid(), cfg.context(), cfg.batch(), 0);
            ObjectNode f = JSON.createObjectNode();
            f.put("step", step);
            f.put("tokensSeen", tokensSeen);
            f.put("trainSeconds", trainSeconds);
            f.put("validTokensPredicted", (long) nll[1]);
            f.put("validLoss", nll[0] / nll[1]);
            f.put("validPerplexity", Math.exp(nll[0] / nll[1]));
            f.put("evalSeconds", (System.nanoTime() - e0) / 1e9);
            f.set("config", cfg.toJson());
            JSON.writerWithDefaultPrettyPrinter().writeValue(run.resolve("final.json").toFile(), f);
            opt.log().printf(java.util.Locale.ROOT, "final validation over all %,d predicted tokens: loss %.4f, ppl %.2f%n",
                    (long) nll[1], nll[0] / nll[1], Math.exp(nll[0] / nll[1]));
        }
        return new Result(step, finished, lastTrain, lastVal);
    }

    private AdamW newAdam(TrainModel model, NDManager root) {
        return new AdamW(model.parameters(), root, cfg.beta1(), cfg.beta2(), cfg.eps(), cfg.weightDecay(),
                TrainModel::decays);
    }

    private void save(Map<String, NDArray> params, AdamW adam, int step, long tokensSeen, double trainSeconds,
                      ArrayNode history, ModelConfig mc) throws IOException {
        long t0 = System.nanoTime();
        ObjectNode st = JSON.createObjectNode();
        st.put("step", step);
        st.put("adamSteps", adam.steps());
        st.put("tokensSeen", tokensSeen);
        st.put("trainSeconds", trainSeconds);
        st.put("sampler", "window starts = splitmix64(seed, step, micro, row): stateless");
        st.set("config", cfg.toJson());
        st.put("bos", mc.bosTokenId());
        st.put("eos", mc.eosTokenIds().get(0));
        st.set("validation", history);
        Checkpoint.save(run, params, adam, st);
        opt.log().printf("checkpoint at step %d written in %.1f s%n", step, (System.nanoTime() - t0) / 1e9);
    }

    /** With {@code --init-from}: the model folder whose weights a new run starts from (else random ones). */
    Path initFrom;

    /**
     * The weights of a published model folder (any dtype, read as float32) under Hugging Face names, checked against
     * the run's shapes: a warm restart must keep the architecture and the tokenizer.
     */
    static Map<String, float[]> publishedWeights(Path folder, ModelConfig mc) {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (lab.steering.model.SafetensorsReader r = lab.steering.model.SafetensorsReader.open(folder)) {
            for (Map.Entry<String, long[]> e : TrainModel.shapes(mc).entrySet()) {
                if (!r.contains(e.getKey())) {
                    throw new IllegalArgumentException(folder + " has no tensor " + e.getKey());
                }
                if (!java.util.Arrays.equals(r.info(e.getKey()).shape(), e.getValue())) {
                    throw new IllegalArgumentException(folder + ": " + e.getKey() + " has shape "
                            + java.util.Arrays.toString(r.info(e.getKey()).shape()) + ", the run needs "
                            + java.util.Arrays.toString(e.getValue()));
                }
                out.put(e.getKey(), r.readFloats(e.getKey()));
            }
        }
        return out;
    }

    /** Sets gradients to 0 in place; unlike {@code g.subi(g)}, this also clears NaN and infinity. */
    static void zero(Iterable<NDArray> grads) {
        for (NDArray g : grads) {
            g.set(new ai.djl.ndarray.index.NDIndex("..."), 0f);
        }
    }

    /**
     * Scales the gradients in place so that their global L2 norm is at most {@code max}; returns the norm before.
     */
    public static double clipGlobalNorm(Map<String, NDArray> grads, double max) {
        double sq = 0;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            for (NDArray g : grads.values()) {
                sq += g.square().sum().toType(ai.djl.ndarray.types.DataType.FLOAT64, false).getDouble();
            }
        }
        double norm = Math.sqrt(sq);
        if (max > 0 && norm > max) {
            double s = max / (norm + 1e-6);
            grads.values().forEach(g -> g.muli(s));
        }
        return norm;
    }

    private void metrics(String kind, ObjectNode n) throws IOException {
        n.put("kind", kind);
        n.put("time", java.time.Instant.now().toString());
        Files.writeString(run.resolve("metrics.jsonl"), JSON.writeValueAsString(n) + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    static String clock(double seconds) {
        long s = Math.round(seconds);
        return String.format("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    }

    /** CPU time of the whole process (all threads, including PyTorch's), or 0 when unknown. */
    static long cpuNanos() {
        var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean sun ? sun.getProcessCpuTime() : 0;
    }

    /** Resident set size of this process, from /proc (Linux), or "?". */
    static String rss() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmRSS:")) {
                    long kb = Long.parseLong(l.replaceAll("[^0-9]", ""));
                    return String.format(java.util.Locale.ROOT, "%.2fG", kb / 1048576.0);
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return "?";
    }
}
