package lab.steering.steer;

import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;

/**
 * Does a method bring a concept into the text without breaking it? For every concept of an {@link EvalSuite} and
 * every prompt, the unsteered continuation and one steered continuation per method and strength, scored by the
 * success rule of issue 19:
 * <blockquote>a (concept, prompt) pair counts for a method when some strength puts a concept word into the steered
 * continuation that the unsteered one lacks, with the steered text's perplexity under the unsteered model at most
 * {@value #MAX_PERPLEXITY_RATIO} times the unsteered text's, and no token repeated {@value #MAX_RUN} times in a
 * row.</blockquote>
 * Words are the continuation's runs of letters, lower-cased, compared with the concept's word list. The
 * perplexities are those {@link SteeredRun} reports: the unsteered model's, over the generated tokens. Methods:
 * {@code operator} (the dense Jacobian operator of the concept prompt at the layer) and {@code actadd} (the additive
 * vector of the concept prompt against its contrast prompt, default empty, at the same layer, scaled alike).
 */
public final class SteeringEval {

    public static final double MAX_PERPLEXITY_RATIO = 2.0;
    public static final int MAX_RUN = 4;
    public static final List<String> METHODS = List.of("operator", "actadd");

    private SteeringEval() {
    }

    /**
     * @param layer     split layer (null: the operator default, 2L/3)
     * @param strengths the strengths tried for each method
     * @param params    decoding settings of every continuation, unsteered and steered alike
     */
    public record Settings(List<String> methods, List<Double> strengths, Integer layer, GenerationParams params) {
    }

    /** One steered continuation. */
    public record Try(double strength, String text, double perplexity, double ratio, List<String> newWords,
                      int longestRun, boolean success) {
    }

    /** One concept and prompt under one method: every strength tried, and the smallest that succeeded. */
    public record Pair(String concept, String prompt, String method, String unsteered, double unsteeredPerplexity,
                       List<Try> tries, Double successStrength) {
        public boolean success() {
            return successStrength != null;
        }
    }

    /**
     * A method's share of pairs that succeed, and its pairs. {@code chance} is the same rule's share when each pair
     * is scored on the continuations steered by the <em>other</em> concepts ({@link #chance}): the rate at which the
     * rule counts a success that the concept did not cause, since any push away from the unsteered text may happen
     * to bring in a common word of the list ("hot", "play", "tail").
     */
    public record MethodResult(String method, int pairs, int successes, double chance, List<Pair> details) {
        public double rate() {
            return pairs == 0 ? 0 : (double) successes / pairs;
        }
    }

    public record Report(String model, String suite, int layer, Settings settings, List<MethodResult> methods,
                         double seconds) {
    }

    /** Progress: what is being done and the fraction done. */
    public interface Progress {
        void update(String stage, double fraction);
    }

    public static Report run(LanguageModel model, EvalSuite suite, Settings s, Progress progress) {
        return run(model, suite, s, ds -> {
            for (SteeredRun.Decoding d : ds) {
                lab.steering.generate.DecodeDriver.alone(model, d);
            }
        }, progress);
    }

    /**
     * As above, handing each concept's decodings (its prompts' unsteered ones, then every method, strength and prompt)
     * to {@code runner} at once, which runs them all to their ends: one after another, or together through a batched
     * decoder (the same tokens).
     */
    public static Report run(LanguageModel model, EvalSuite suite, Settings s,
                             java.util.function.Consumer<SteeredRun.Decoding[]> runner, Progress progress) {
        long t0 = System.nanoTime();
        int layer = s.layer() != null ? s.layer() : OperatorBuilder.defaultLayer(model.config().numLayers());
        List<List<Pair>> perMethod = new ArrayList<>();
        for (int i = 0; i < s.methods().size(); i++) {
            perMethod.add(new ArrayList<>());
        }
        Map<String, Set<String>> conceptWords = wordLists(suite);
        int total = suite.concepts().size();
        int done = 0;
        for (EvalSuite.Concept c : suite.concepts()) {
            progress.update(c.name(), (double) done / total);
            long[] conceptIds = model.tokenizer().encode(c.conceptPrompt());
            List<Function<Double, Function<NDManager, Steerer>>> steerers = new ArrayList<>();
            for (String method : s.methods()) {
                steerers.add(steering(model, method, c, conceptIds, layer));
            }
            Set<String> words = conceptWords.get(c.name());
            int np = suite.prompts().size();
            int ns = s.strengths().size();
            List<SteeredRun.Decoding> all = new ArrayList<>();
            for (String prompt : suite.prompts()) {
                all.add(new SteeredRun.Decoding(model, model.tokenizer().encode(prompt), s.params(), null, conceptIds,
                        0, null));
            }
            for (String prompt : suite.prompts()) {
                long[] ids = model.tokenizer().encode(prompt);
                for (int mi = 0; mi < s.methods().size(); mi++) {
                    for (double strength : s.strengths()) {
                        all.add(new SteeredRun.Decoding(model, ids, s.params(), steerers.get(mi).apply(strength),
                                conceptIds, 0, null));
                    }
                }
            }
            runner.accept(all.toArray(SteeredRun.Decoding[]::new));
            for (int pi = 0; pi < np; pi++) {
                String prompt = suite.prompts().get(pi);
                SteeredRun.Result plain = all.get(pi).result();
                String plainText = plain.generation().completion();
                Set<String> plainWords = words(plainText);
                for (int mi = 0; mi < s.methods().size(); mi++) {
                    List<Try> tries = new ArrayList<>();
                    Double first = null;
                    for (int si = 0; si < ns; si++) {
                        double strength = s.strengths().get(si);
                        SteeredRun.Result r = all.get(np + (pi * s.methods().size() + mi) * ns + si).result();
                        Try t = score(r, plain.perplexity(), plainWords, words, strength);
                        tries.add(t);
                        if (t.success() && first == null) {
                            first = strength;
                        }
                    }
                    perMethod.get(mi).add(new Pair(c.name(), prompt, s.methods().get(mi), plainText, plain.perplexity(),
                            List.copyOf(tries), first));
                }
            }
            done++;
        }
        progress.update("done", 1);
        List<MethodResult> results = new ArrayList<>();
        for (int mi = 0; mi < s.methods().size(); mi++) {
            List<Pair> pairs = perMethod.get(mi);
            results.add(new MethodResult(s.methods().get(mi), pairs.size(),
                    (int) pairs.stream().filter(Pair::success).count(), chance(pairs, conceptWords),
                    List.copyOf(pairs)));
        }
        return new Report(model.id(), suite.name(), layer, s, List.copyOf(results), (System.nanoTime() - t0) / 1e9);
    }

    private static Function<Double, Function<NDManager, Steerer>> steering(LanguageModel model, String method,
                                                                           EvalSuite.Concept c, long[] conceptIds,
                                                                           int layer) {
        switch (method) {
            case "operator" -> {
                SteeringOperator op = OperatorBuilder.full(model, conceptIds, layer, model.dataType(), r -> { });
                return strength -> m -> new Injector(op, strength, m, model.dataType());
            }
            case "actadd" -> {
                long[] contrast = model.tokenizer().encode(c.contrastPrompt() == null ? "" : c.contrastPrompt());
                SteeringVector v = SteeringVector.build(model, conceptIds, contrast, layer);
                return strength -> m -> new VectorInjector(v, strength, m, model.dataType());
            }
            default -> throw new IllegalArgumentException("unknown method '" + method + "', known: " + METHODS);
        }
    }

    /**
     * The control of a method's rate: for each pair (concept c, prompt p), the fraction of the other concepts c' of
     * the same prompt for which some strength's continuation, steered by c', would count as a success for c (a word
     * of c's list that the unsteered text lacks, perplexity ratio and repetition as the rule); averaged over the
     * pairs. A method that brings in its own concept scores well above it; one that only shakes the text, near it.
     * 0 when a prompt has a single concept.
     */
    public static double chance(List<Pair> pairs, Map<String, Set<String>> words) {
        double sum = 0;
        int n = 0;
        for (Pair p : pairs) {
            Set<String> plainWords = words(p.unsteered());
            Set<String> mine = words.get(p.concept());
            int others = 0;
            int hits = 0;
            for (Pair q : pairs) {
                if (!q.prompt().equals(p.prompt()) || q.concept().equals(p.concept())) {
                    continue;
                }
                others++;
                for (Try t : q.tries()) {
                    if (succeeds(newWords(t.text(), plainWords, mine), t.ratio(), t.longestRun())) {
                        hits++;
                        break;
                    }
                }
            }
            if (others > 0) {
                sum += (double) hits / others;
                n++;
            }
        }
        return n == 0 ? 0 : sum / n;
    }

    /** Each concept's words, lower-cased. */
    static Map<String, Set<String>> wordLists(EvalSuite suite) {
        Map<String, Set<String>> out = new LinkedHashMap<>();
        for (EvalSuite.Concept c : suite.concepts()) {
            Set<String> w = new LinkedHashSet<>();
            c.words().forEach(x -> w.add(x.toLowerCase(Locale.ROOT)));
            out.put(c.name(), w);
        }
        return out;
    }

    /** Scores one steered continuation against the unsteered one (the rule in the class comment). */
    static Try score(SteeredRun.Result r, double plainPerplexity, Set<String> plainWords, Set<String> conceptWords,
                     double strength) {
        long[] ids = r.generation().tokens().stream().mapToLong(t -> t.id()).toArray();
        return score(r.generation().completion(), ids, r.perplexity(), plainPerplexity, plainWords, conceptWords,
                strength);
    }

    static Try score(String text, long[] ids, double perplexity, double plainPerplexity, Set<String> plainWords,
                     Set<String> conceptWords, double strength) {
        List<String> fresh = newWords(text, plainWords, conceptWords);
        int run = longestRun(ids);
        double ratio = perplexity / plainPerplexity;
        return new Try(strength, text, perplexity, ratio, fresh, run, succeeds(fresh, ratio, run));
    }

    /** The concept words of {@code text} that the unsteered text lacks, in order of appearance. */
    private static List<String> newWords(String text, Set<String> plainWords, Set<String> conceptWords) {
        List<String> fresh = new ArrayList<>();
        for (String w : words(text)) {
            if (conceptWords.contains(w) && !plainWords.contains(w)) {
                fresh.add(w);
            }
        }
        return List.copyOf(fresh);
    }

    /** The success rule (the class comment): a new concept word, fluent enough, no token looping. */
    private static boolean succeeds(List<String> newWords, double ratio, int longestRun) {
        return !newWords.isEmpty() && ratio <= MAX_PERPLEXITY_RATIO && longestRun < MAX_RUN;
    }

    /** The distinct words of a text ({@link TextScores#words}), in order of appearance. */
    public static Set<String> words(String text) {
        return new LinkedHashSet<>(TextScores.words(text));
    }

    /** The longest run of one id repeated back to back. */
    public static int longestRun(long[] ids) {
        int best = 0;
        int run = 0;
        for (int i = 0; i < ids.length; i++) {
            run = i > 0 && ids[i] == ids[i - 1] ? run + 1 : 1;
            best = Math.max(best, run);
        }
        return best;
    }
}
