package lab.steering.eval;

import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;
import lab.steering.generate.DecodeDriver;
import lab.steering.generate.GeneratedToken;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;
import lab.steering.steer.EvalSuite;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.Steerer;
import lab.steering.steer.SteeringOperator;
import lab.steering.steer.SteeringVector;
import lab.steering.steer.TextScores;
import lab.steering.steer.VectorInjector;

/**
 * The steering benchmark (issue 14): which method brings a concept into a continuation, how strongly, and at what
 * cost to fluency and to the prompt. Plain Java on the core (no Quarkus): the app runs it as a job, the command line
 * as {@code scripts/bench.sh steering-eval}.
 * <p>
 * For every concept of an {@link EvalSuite} and every prompt, continuations by the methods:
 * {@value #NONE} (the unsteered model), {@value #PROMPTING} (the concept prompt, a space, then the prompt),
 * {@value #ACTADD} (the additive vector of the concept prompt against its contrast prompt, {@link SteeringVector}),
 * {@value #OPERATOR} (the dense detached-Jacobian operator of the concept prompt, {@link Injector}) and
 * {@value #LOW_RANK} (its per-token truncated SVD at a fixed rank). The prompts are split once, by the seed, into a
 * selection part (about {@code selectFraction} of them) and a report part: every strength and layer of a steered
 * method runs on the selection prompts, the one with the highest mean aggregate score is chosen there (the first in
 * the request's order on a tie), and only the chosen setting runs on the report prompts, where the means and their
 * bootstrap intervals over concepts are reported. Every score of a continuation is {@link OutputScores}'.
 * Generation goes through one {@link Decoder} (one place to switch to batched decoding); seeds are derived from
 * the run's seed per output, so a run reproduces exactly.
 */
public final class SteeringBenchmark {

    public static final String NONE = "none";
    public static final String PROMPTING = "prompting";
    public static final String ACTADD = "actadd";
    public static final String OPERATOR = "operator";
    public static final String LOW_RANK = "operator-lowrank";
    public static final List<String> METHODS = List.of(NONE, PROMPTING, ACTADD, OPERATOR, LOW_RANK);
    /** The methods that take a strength and a layer. */
    public static final Set<String> STEERED = Set.of(ACTADD, OPERATOR, LOW_RANK);
    /** The scores summarised per method, in report order (keys of {@link MethodSummary#scores}). */
    public static final List<String> SCORES = List.of("aggregate", "concept", "fluency", "promptRelevance", "hits",
            "conceptLogProb", "conceptSimilarity", "perplexity", "perplexityRatio", "repetition", "distinct2",
            "relevance");

    private SteeringBenchmark() {
    }

    /**
     * What a run does. {@code none} always runs (it is every score's reference and the side-by-side text).
     *
     * @param methods        among {@link #METHODS}
     * @param strengths      tried for each steered method (the lambda of docs/steering.md)
     * @param layers         split layers tried for each steered method (empty: the operator default, 2L/3)
     * @param maxNewTokens   tokens per continuation
     * @param temperature    0: greedy; else sampling at this temperature with each output's derived seed
     * @param seed           the split of the prompts, every sampled continuation and the bootstrap derive from it
     * @param selectFraction the share of the prompts that chooses the strength and layer (at least one, never all)
     * @param rank           the low-rank operator's rank per concept token
     * @param resamples      bootstrap resamples of the concepts (95% percentile intervals)
     */
    public record Settings(List<String> methods, List<Double> strengths, List<Integer> layers, int maxNewTokens,
                           double temperature, long seed, double selectFraction, int rank, int resamples) {

        public Settings {
            methods = List.copyOf(methods);
            strengths = List.copyOf(strengths);
            layers = layers == null ? List.of() : List.copyOf(layers);
        }

        /** The methods in {@link #METHODS} order, {@code none} included. */
        public List<String> orderedMethods() {
            List<String> out = new ArrayList<>();
            for (String m : METHODS) {
                if (m.equals(NONE) || methods.contains(m)) {
                    out.add(m);
                }
            }
            return out;
        }
    }

    /** One continuation: which concept (index), prompt (index), split, method and setting, its text and scores. */
    public record Output(int concept, int prompt, String split, String method, Double strength, Integer layer,
                         String text, int tokens, OutputScores scores) {
    }

    /** One method and setting over the selection prompts: the means of the components (a point of the plot). */
    public record GridPoint(String method, Double strength, Integer layer, int outputs, double concept, double fluency,
                            double promptRelevance, double aggregate, boolean chosen) {
    }

    /** A method on the report prompts at its chosen setting: each score's mean and 95% interval over concepts. */
    public record MethodSummary(String method, Double strength, Integer layer, int outputs,
                                Map<String, TextScores.Interval> scores) {
    }

    /** A finished run. {@code seconds} is the only field that differs when the same run is repeated. */
    public record Result(String model, String embedder, EvalSuite suite, Settings settings, List<Integer> layers,
                         List<Integer> selectPrompts, List<Integer> reportPrompts, List<MethodSummary> methods,
                         List<GridPoint> grid, List<Output> outputs, double seconds) {
    }

    /** Progress and cancellation point: may throw to stop the run. */
    public interface Progress {
        void update(String stage, double fraction);

        Progress NONE = (stage, fraction) -> { };
    }

    /** A continuation and the model-based measures of it. */
    public record Continuation(String text, long[] ids, double perplexity, Double conceptLogProb) {
    }

    /** One continuation to generate: see {@link Decoder#decode}. */
    public record Request(long[] promptIds, long[] plainIds, Function<NDManager, Steerer> steering,
                          long[] conceptTokens, GenerationParams params) {
    }

    /**
     * The one place where the benchmark generates text.
     */
    @FunctionalInterface
    public interface Decoder {
        /**
         * @param promptIds     what the method's model continues (the concept prompt put before it, for prompting)
         * @param plainIds      the plain prompt: the perplexity is the unsteered model's given it
         * @param steering      the intervention (null: none)
         * @param conceptTokens the concept words' first tokens (the concept log-probability's set)
         */
        Continuation decode(long[] promptIds, long[] plainIds, Function<NDManager, Steerer> steering,
                            long[] conceptTokens, GenerationParams params);

        /** Every request's continuation, in order (a batched decoder decodes them together). */
        default List<Continuation> decodeAll(List<Request> requests) {
            List<Continuation> out = new ArrayList<>();
            for (Request r : requests) {
                out.add(decode(r.promptIds(), r.plainIds(), r.steering(), r.conceptTokens(), r.params()));
            }
            return out;
        }
    }

    /** Token at a time with the KV cache ({@link SteeredRun}), one continuation after another. */
    public static Decoder sequentialDecoder(LanguageModel model) {
        return decoder(model, ds -> {
            for (SteeredRun.Decoding d : ds) {
                DecodeDriver.alone(model, d);
            }
        });
    }

    /**
     * The decoder that hands the {@link SteeredRun.Decoding}s of a group of requests to {@code runner}, which runs
     * them all to their ends: one after another ({@link DecodeDriver#alone}), or submitted together, in order, to a
     * batched decoder. Submitted together to a decoder nothing else uses, a run is as reproducible as one after
     * another: which rows share a step depends on the requests alone, not on timing.
     */
    public static Decoder decoder(LanguageModel model,
                                  java.util.function.Consumer<SteeredRun.Decoding[]> runner) {
        return new Decoder() {
            @Override
            public Continuation decode(long[] promptIds, long[] plainIds, Function<NDManager, Steerer> steering,
                                       long[] conceptTokens, GenerationParams params) {
                return decodeAll(List.of(new Request(promptIds, plainIds, steering, conceptTokens, params))).get(0);
            }

            @Override
            public List<Continuation> decodeAll(List<Request> requests) {
                SteeredRun.Decoding[] ds = new SteeredRun.Decoding[requests.size()];
                for (int i = 0; i < ds.length; i++) {
                    Request r = requests.get(i);
                    ds[i] = new SteeredRun.Decoding(model, r.promptIds(), r.params(), r.steering(), r.conceptTokens(),
                            0, null);
                }
                if (ds.length > 0) {
                    runner.accept(ds);
                }
                List<Continuation> out = new ArrayList<>();
                for (int i = 0; i < ds.length; i++) {
                    Request q = requests.get(i);
                    SteeredRun.Result r = ds[i].result();
                    long[] gen = r.generation().tokens().stream().mapToLong(GeneratedToken::id).toArray();
                    double ppl = Arrays.equals(q.promptIds(), q.plainIds()) ? r.perplexity()
                            : Math.exp(-mean(tokenLogProbs(model, q.plainIds(), gen, null)));
                    out.add(new Continuation(r.generation().completion(), gen, ppl, r.conceptScore()));
                }
                return out;
            }
        };
    }

    /** Runs the benchmark with the app's decoder ({@link #sequentialDecoder}). */
    public static Result run(LanguageModel model, EvalSuite suite, Settings s, Embedder embedder, Progress progress) {
        return run(model, suite, s, embedder, sequentialDecoder(model), progress);
    }

    public static Result run(LanguageModel model, EvalSuite suite, Settings s, Embedder embedder, Decoder decoder,
                             Progress progress) {
        return run(model, suite, s, embedder, decoder, 1, progress);
    }

    /**
     * As above, scoring outputs on up to {@code parallel} threads (the sentence embeddings). Each group of
     * continuations (a concept's unsteered, prompted and steered ones) goes to {@link Decoder#decodeAll} at once. The
     * outputs, their order and their numbers do not depend on {@code parallel}: every output's seed comes from its
     * coordinates, and batched decoding gives each continuation its unbatched tokens.
     */
    public static Result run(LanguageModel model, EvalSuite suite, Settings s, Embedder embedder, Decoder decoder,
                             int parallel, Progress progress) {
        long t0 = System.nanoTime();
        SuiteCheck.check(suite);
        List<Integer> layers = s.layers().isEmpty()
                ? List.of(OperatorBuilder.defaultLayer(model.config().numLayers())) : s.layers();
        List<String> methods = s.orderedMethods();
        List<String> steered = methods.stream().filter(STEERED::contains).toList();
        int[][] split = split(suite.prompts().size(), s.selectFraction(), s.seed());
        Run run = new Run(model, suite, s, embedder, decoder, progress, methods, parallel);
        int nc = suite.concepts().size();
        boolean prompting = methods.contains(PROMPTING);
        run.total = (double) nc * split[0].length * (1 + (prompting ? 1 : 0) + steered.size() * s.strengths().size()
                * layers.size()) + (double) nc * split[1].length * (1 + (prompting ? 1 : 0) + steered.size());
        List<Output> outputs = new ArrayList<>();
        // selection: every setting of every steered method on the selection prompts
        for (int c = 0; c < nc; c++) {
            outputs.addAll(run.concept(c, split[0], "select", steered, s.strengths(), layers));
        }
        Map<String, Double[]> chosen = new LinkedHashMap<>(); // method -> {strength, layer}
        List<GridPoint> grid = new ArrayList<>();
        for (String m : methods) {
            Double[] best = null;
            double bestScore = Double.NEGATIVE_INFINITY;
            List<Double[]> settings = new ArrayList<>();
            if (STEERED.contains(m)) {
                for (int layer : layers) {
                    for (double st : s.strengths()) {
                        settings.add(new Double[] {st, (double) layer});
                    }
                }
            } else {
                settings.add(new Double[] {null, null});
            }
            for (Double[] set : settings) {
                List<Output> rows = outputs.stream().filter(o -> o.method().equals(m) && same(o.strength(), set[0])
                        && same(o.layer() == null ? null : o.layer().doubleValue(), set[1])).toList();
                double agg = mean(rows, o -> o.scores().aggregate());
                if (agg > bestScore) {
                    bestScore = agg;
                    best = set;
                }
            }
            chosen.put(m, best);
            for (Double[] set : settings) {
                List<Output> rows = outputs.stream().filter(o -> o.method().equals(m) && same(o.strength(), set[0])
                        && same(o.layer() == null ? null : o.layer().doubleValue(), set[1])).toList();
                grid.add(new GridPoint(m, set[0], set[1] == null ? null : set[1].intValue(), rows.size(),
                        mean(rows, o -> o.scores().concept()), mean(rows, o -> o.scores().fluency()),
                        mean(rows, o -> o.scores().promptRelevance()), mean(rows, o -> o.scores().aggregate()),
                        set == best));
            }
        }
        // report: each steered method at its chosen setting on the other prompts
        for (int c = 0; c < nc; c++) {
            outputs.addAll(run.reportConcept(c, split[1], steered, chosen));
        }
        List<MethodSummary> summaries = new ArrayList<>();
        for (String m : methods) {
            List<Output> rows = outputs.stream().filter(o -> o.split().equals("report") && o.method().equals(m))
                    .toList();
            Double[] set = chosen.get(m);
            summaries.add(new MethodSummary(m, set[0], set[1] == null ? null : set[1].intValue(), rows.size(),
                    summarise(rows, nc, s)));
        }
        progress.update("done", 1);
        return new Result(model.id(), embedder.name(), suite, s, layers, Arrays.stream(split[0]).boxed().toList(),
                Arrays.stream(split[1]).boxed().toList(), summaries, grid, outputs, (System.nanoTime() - t0) / 1e9);
    }

    /** One run's state: the model, cached embeddings and unsteered continuations, progress. */
    private static final class Run {
        final LanguageModel model;
        final EvalSuite suite;
        final Settings s;
        final Embedder embedder;
        final Decoder decoder;
        final Progress progress;
        final List<String> methods;
        final Map<Integer, Continuation> plain = new java.util.concurrent.ConcurrentHashMap<>();
        final Map<Integer, double[][]> plainLogProbs = new java.util.concurrent.ConcurrentHashMap<>();
        final Map<String, float[]> embeddings = new java.util.concurrent.ConcurrentHashMap<>();
        final int parallel;
        double total;
        volatile double done;

        Run(LanguageModel model, EvalSuite suite, Settings s, Embedder embedder, Decoder decoder, Progress progress,
            List<String> methods, int parallel) {
            this.parallel = Math.max(1, parallel);
            this.model = model;
            this.suite = suite;
            this.s = s;
            this.embedder = embedder;
            this.decoder = decoder;
            this.progress = progress;
            this.methods = methods;
        }

        float[] embedding(String text) {
            return embeddings.computeIfAbsent(text, embedder::embed);
        }

        /** The selection rows of concept c: none, prompting, and every steered method at every setting. */
        List<Output> concept(int c, int[] prompts, String split, List<String> steered, List<Double> strengths,
                             List<Integer> layers) {
            EvalSuite.Concept concept = suite.concepts().get(c);
            long[] conceptIds = model.tokenizer().encode(concept.conceptPrompt());
            long[] wordTokens = wordTokens(concept.words());
            List<Output> out = unsteeredRows(c, prompts, split, wordTokens);
            List<Steered> rows = new ArrayList<>();
            for (int layer : layers) {
                Map<String, Function<Double, Function<NDManager, Steerer>>> make = steerings(concept, conceptIds, layer,
                        steered);
                for (String m : steered) {
                    for (int si = 0; si < strengths.size(); si++) {
                        double st = strengths.get(si);
                        for (int p : prompts) {
                            rows.add(new Steered(p, m, st, layer, make.get(m).apply(st)));
                        }
                    }
                }
            }
            out.addAll(steeredRows(c, split, rows, wordTokens));
            return out;
        }

        /** The report rows of concept c: none, prompting, and each steered method at its chosen setting. */
        List<Output> reportConcept(int c, int[] prompts, List<String> steered, Map<String, Double[]> chosen) {
            EvalSuite.Concept concept = suite.concepts().get(c);
            long[] conceptIds = model.tokenizer().encode(concept.conceptPrompt());
            long[] wordTokens = wordTokens(concept.words());
            List<Output> out = unsteeredRows(c, prompts, "report", wordTokens);
            List<Steered> rows = new ArrayList<>();
            for (String m : steered) {
                double st = chosen.get(m)[0];
                int layer = chosen.get(m)[1].intValue();
                var make = steerings(concept, conceptIds, layer, List.of(m)).get(m);
                for (int p : prompts) {
                    rows.add(new Steered(p, m, st, layer, make.apply(st)));
                }
            }
            out.addAll(steeredRows(c, "report", rows, wordTokens));
            return out;
        }

        /** A steered row to generate: prompt, method, strength, layer and its steering. */
        record Steered(int p, String method, double strength, int layer, Function<NDManager, Steerer> steering) {
        }

        /** The steered rows of concept c, decoded together, then scored (in parallel), in their order. */
        List<Output> steeredRows(int c, String split, List<Steered> rows, long[] wordTokens) {
            List<Request> requests = new ArrayList<>();
            for (Steered r : rows) {
                tick(c, r.p(), r.method() + " " + r.strength() + " at layer " + r.layer());
                requests.add(new Request(promptIds(r.p()), promptIds(r.p()), r.steering(), wordTokens,
                        params(c, r.p(), 2 + METHODS.indexOf(r.method()), Double.hashCode(r.strength()), r.layer())));
            }
            List<Continuation> ks = decoder.decodeAll(requests);
            List<java.util.concurrent.Callable<Output>> tasks = new ArrayList<>();
            for (int i = 0; i < rows.size(); i++) {
                Steered r = rows.get(i);
                Continuation k = ks.get(i);
                tasks.add(() -> output(c, r.p(), split, r.method(), r.strength(), r.layer(), k));
            }
            return all(tasks);
        }

        /**
         * The unsteered and prompted rows, in the order none, prompting for each prompt: the prompts' unsteered
         * continuations first (decoded once per prompt for the whole run), as every row's fluency refers to them, then
         * the prompted ones, each group decoded together.
         */
        List<Output> unsteeredRows(int c, int[] prompts, String split, long[] wordTokens) {
            List<Integer> missing = new ArrayList<>();
            List<Request> plainRequests = new ArrayList<>();
            for (int p : prompts) {
                tick(c, p, NONE);
                if (!plain.containsKey(p)) {
                    missing.add(p);
                    plainRequests.add(new Request(promptIds(p), promptIds(p), null, new long[0],
                            params(-1, p, 0, 0, 0)));
                }
            }
            List<Continuation> ks = decoder.decodeAll(plainRequests);
            for (int i = 0; i < missing.size(); i++) {
                plain.put(missing.get(i), ks.get(i));
            }
            List<Continuation> prompted = List.of();
            if (methods.contains(PROMPTING)) {
                List<Request> rq = new ArrayList<>();
                for (int p : prompts) {
                    tick(c, p, PROMPTING);
                    long[] ids = model.tokenizer().encode(suite.concepts().get(c).conceptPrompt() + " "
                            + suite.prompts().get(p));
                    rq.add(new Request(ids, promptIds(p), null, wordTokens, params(c, p, 1, 0, 0)));
                }
                prompted = decoder.decodeAll(rq);
            }
            List<java.util.concurrent.Callable<Output>> tasks = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                int p = prompts[i];
                tasks.add(() -> unsteered(c, p, split, wordTokens));
                if (!prompted.isEmpty()) {
                    Continuation k = prompted.get(i);
                    tasks.add(() -> output(c, p, split, PROMPTING, null, null, k));
                }
            }
            return all(tasks);
        }

        /** Runs the tasks, up to {@code parallel} at once, and returns their outputs in the tasks' order. */
        List<Output> all(List<java.util.concurrent.Callable<Output>> tasks) {
            List<Output> out = new ArrayList<>();
            if (parallel == 1 || tasks.size() < 2) {
                for (java.util.concurrent.Callable<Output> t : tasks) {
                    out.add(call(t));
                }
                return out;
            }
            java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(
                    Math.min(parallel, tasks.size()), r -> {
                        Thread th = new Thread(r, "benchmark-decoding");
                        th.setDaemon(true);
                        return th;
                    });
            try {
                List<java.util.concurrent.Future<Output>> fs = new ArrayList<>();
                for (java.util.concurrent.Callable<Output> t : tasks) {
                    fs.add(pool.submit(() -> call(t)));
                }
                for (java.util.concurrent.Future<Output> f : fs) {
                    out.add(f.get());
                }
                return out;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.util.concurrent.CancellationException("interrupted");
            } catch (java.util.concurrent.ExecutionException e) {
                if (e.getCause() instanceof RuntimeException re) {
                    throw re;
                }
                throw new IllegalStateException(e.getCause());
            } finally {
                pool.shutdownNow();
            }
        }

        private static Output call(java.util.concurrent.Callable<Output> t) {
            try {
                return t.call();
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }

        Map<String, Function<Double, Function<NDManager, Steerer>>> steerings(EvalSuite.Concept c, long[] conceptIds,
                                                                             int layer, List<String> steered) {
            Map<String, Function<Double, Function<NDManager, Steerer>>> out = new HashMap<>();
            SteeringOperator dense = null;
            if (steered.contains(OPERATOR) || steered.contains(LOW_RANK)) {
                progress.update("concept " + c.name() + ": operator at layer " + layer, done / total);
                dense = OperatorBuilder.full(model, conceptIds, layer, model.dataType(), r -> { });
            }
            for (String m : steered) {
                switch (m) {
                    case OPERATOR -> {
                        SteeringOperator op = dense;
                        out.put(m, st -> mgr -> new Injector(op, st, mgr, model.dataType()));
                    }
                    case LOW_RANK -> {
                        SteeringOperator op = OperatorBuilder.lowRank(dense, Math.min(s.rank(), dense.dim()), 1.0);
                        out.put(m, st -> mgr -> new Injector(op, st, mgr, model.dataType()));
                    }
                    case ACTADD -> {
                        long[] contrast = model.tokenizer().encode(c.contrastPrompt() == null ? ""
                                : c.contrastPrompt());
                        SteeringVector v = SteeringVector.build(model, conceptIds, contrast, layer);
                        out.put(m, st -> mgr -> new VectorInjector(v, st, mgr, model.dataType()));
                    }
                    default -> throw new IllegalArgumentException("not a steered method: " + m);
                }
            }
            return out;
        }

        /** The unsteered continuation of prompt p (generated once per prompt), scored for concept c. */
        Output unsteered(int c, int p, String split, long[] wordTokens) {
            Continuation k = plain.get(p);
            double[][] lp = plainLogProbs.computeIfAbsent(p, i -> {
                double[][] out = new double[k.ids().length][];
                tokenLogProbs(model, promptIds(i), k.ids(), out);
                return out;
            });
            double mass = 0;
            for (double[] row : lp) {
                mass += logSum(row, wordTokens);
            }
            Double conceptLogProb = lp.length == 0 || wordTokens.length == 0 ? null : mass / lp.length;
            return output(c, p, split, NONE, null, null, new Continuation(k.text(), k.ids(), k.perplexity(),
                    conceptLogProb));
        }

        Output output(int c, int p, String split, String method, Double strength, Integer layer, Continuation k) {
            EvalSuite.Concept concept = suite.concepts().get(c);
            String prompt = suite.prompts().get(p);
            float[] e = embedding(k.text());
            OutputScores sc = OutputScores.of(k.text(), concept.words(), k.conceptLogProb(), k.perplexity(),
                    plain.get(p).perplexity(), Embedder.cosine(e, embedding(concept.conceptPrompt())),
                    Embedder.cosine(e, embedding(prompt)));
            synchronized (this) {
                done++;
            }
            return new Output(c, p, split, method, strength, layer, k.text(), k.ids().length, sc);
        }

        void tick(int c, int p, String what) {
            progress.update(String.format(java.util.Locale.ROOT, "concept %d/%d (%s), prompt %d: %s", c + 1,
                    suite.concepts().size(), suite.concepts().get(c).name(), p + 1, what), done / total);
        }

        long[] promptIds(int p) {
            return model.tokenizer().encode(suite.prompts().get(p));
        }

        /** Each output's own decoding settings: its seed is derived from the run's and the output's coordinates. */
        GenerationParams params(int c, int p, int method, int strength, int layer) {
            long seed = new SplittableRandom(s.seed() ^ (31L * (31L * (31L * (31L * c + p) + method) + strength)
                    + layer) * 0x9E3779B97F4A7C15L).nextLong();
            return new GenerationParams(s.maxNewTokens(), s.temperature(), 0, 1, seed);
        }

        /** The first token of " w" for every concept word w (BOS and EOS left out), distinct. */
        long[] wordTokens(List<String> words) {
            Set<Integer> special = new LinkedHashSet<>(model.config().eosTokenIds());
            special.add(model.config().bosTokenId());
            Set<Long> out = new LinkedHashSet<>();
            for (String w : words) {
                for (long id : model.tokenizer().encode(" " + w)) {
                    if (!special.contains((int) id)) {
                        out.add(id);
                        break;
                    }
                }
            }
            return out.stream().mapToLong(Long::longValue).toArray();
        }
    }

    /**
     * Log-probabilities (temperature 1) under the unsteered model of {@code gen} after {@code prompt}, by one
     * teacher-forced pass; with {@code rows} given, row t is filled with the log-softmax predicting gen[t].
     */
    static double[] tokenLogProbs(LanguageModel model, long[] prompt, long[] gen, double[][] rows) {
        if (gen.length == 0) {
            return new double[0];
        }
        long[] all = Arrays.copyOf(prompt, prompt.length + gen.length);
        System.arraycopy(gen, 0, all, prompt.length, gen.length);
        double[][] logits = Generator.allLogits(model, all, Hooks.NONE);
        double[] out = new double[gen.length];
        for (int t = 0; t < gen.length; t++) {
            double[] l = logits[prompt.length - 1 + t];
            double max = Double.NEGATIVE_INFINITY;
            for (double v : l) {
                max = Math.max(max, v);
            }
            double sum = 0;
            for (double v : l) {
                sum += Math.exp(v - max);
            }
            double lse = max + Math.log(sum);
            double[] row = new double[l.length];
            for (int i = 0; i < l.length; i++) {
                row[i] = l[i] - lse;
            }
            out[t] = row[(int) gen[t]];
            if (rows != null) {
                rows[t] = row;
            }
        }
        return out;
    }

    /** log sum_i exp(logProbs[ids[i]]); the log of the smallest normal double when there are none. */
    static double logSum(double[] logProbs, long[] ids) {
        double s = 0;
        for (long id : ids) {
            s += id < logProbs.length ? Math.exp(logProbs[(int) id]) : 0;
        }
        return Math.log(Math.max(s, Double.MIN_NORMAL));
    }

    /**
     * The prompts split by the seed: a seeded shuffle of the indices, the first round(fraction * n) (at least 1, at
     * most n - 1) choose the settings, the rest are reported; each part in ascending order.
     */
    public static int[][] split(int n, double fraction, long seed) {
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) {
            idx[i] = i;
        }
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        int k = Math.max(1, Math.min(n - 1, (int) Math.round(fraction * n)));
        int[] select = Arrays.copyOf(idx, k);
        int[] report = Arrays.copyOfRange(idx, k, n);
        Arrays.sort(select);
        Arrays.sort(report);
        return new int[][] {select, report};
    }

    /**
     * Each score's mean over the rows with its percentile bootstrap interval over concepts: the rows are averaged per
     * concept first, then the concepts are resampled ({@link TextScores#bootstrap}, 95%, the run's seed). A score
     * undefined for every row (the concept log-probability when no concept word has a token) is left out.
     */
    static Map<String, TextScores.Interval> summarise(List<Output> rows, int concepts, Settings s) {
        Map<String, TextScores.Interval> out = new LinkedHashMap<>();
        for (String key : SCORES) {
            List<Double> perConcept = new ArrayList<>();
            for (int c = 0; c < concepts; c++) {
                int cc = c;
                double[] v = rows.stream().filter(o -> o.concept() == cc).map(o -> value(o.scores(), key))
                        .filter(x -> x != null && Double.isFinite(x)).mapToDouble(Double::doubleValue).toArray();
                if (v.length > 0) {
                    perConcept.add(Arrays.stream(v).average().orElseThrow());
                }
            }
            if (!perConcept.isEmpty()) {
                out.put(key, TextScores.bootstrap(perConcept, Double::doubleValue, s.resamples(), 0.95,
                        s.seed() + key.hashCode()));
            }
        }
        return out;
    }

    /** A score of an output by its key in {@link #SCORES}. */
    public static Double value(OutputScores o, String key) {
        return switch (key) {
            case "aggregate" -> o.aggregate();
            case "concept" -> o.concept();
            case "fluency" -> o.fluency();
            case "promptRelevance" -> o.promptRelevance();
            case "hits" -> (double) o.hits();
            case "conceptLogProb" -> o.conceptLogProb();
            case "conceptSimilarity" -> o.conceptSimilarity();
            case "perplexity" -> o.perplexity();
            case "perplexityRatio" -> o.perplexityRatio();
            case "repetition" -> o.repetition();
            case "distinct2" -> o.distinct2();
            case "relevance" -> o.relevance();
            default -> throw new IllegalArgumentException("unknown score '" + key + "'");
        };
    }

    private static boolean same(Double a, Double b) {
        return a == null ? b == null : a.equals(b);
    }

    private static double mean(List<Output> rows, ToDoubleFunction<Output> f) {
        return rows.isEmpty() ? 0 : rows.stream().mapToDouble(f).average().orElse(0);
    }

    private static double mean(double[] v) {
        return v.length == 0 ? 0 : Arrays.stream(v).average().orElse(0);
    }
}
