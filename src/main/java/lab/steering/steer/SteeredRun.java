package lab.steering.steer;

import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.function.Function;
import lab.steering.generate.Decode;
import lab.steering.generate.DecodeDriver;
import lab.steering.generate.GeneratedToken;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.generate.Sampler;
import lab.steering.hook.Hooks;
import lab.steering.model.LanguageModel;

/**
 * One continuation of a prompt, steered or not, decoded with the KV cache exactly as {@link lab.steering.generate.Generator} does (same
 * sampler, same stops), plus what the steering changed at each step. A second KV cache runs the unsteered model on
 * the same, steered, prefix, so that both next-token distributions are compared in the same context: one extra
 * one-token forward per step. Every NDArray is freed before it returns. {@link #pair} decodes two runs (the Steer
 * page's normal and steered continuations) in lockstep, one token of each per step, for streaming side by side.
 */
public final class SteeredRun {

    private SteeredRun() {
    }

    /** A token whose probability the steering changed: unsteered {@code before}, steered {@code after}. */
    public record Shift(long id, String text, double before, double after) {
    }

    /**
     * One generated token.
     *
     * @param logprob          log-probability under the steered model (temperature 1)
     * @param unsteeredLogprob log-probability under the unsteered model, same prefix
     * @param addedNorm        norm of the vector added to the residual at this position (|lambda| ||h|| / 2)
     * @param residualNorm     ||h||, the unsteered residual at the injection site
     * @param directionNorm    ||a_k|| (operator) or ||v|| (vector)
     * @param conceptLogMass   log of the steered probability that this token is one of the concept's tokens
     * @param kl               KL(steered || unsteered) of the next-token distributions, in nats
     * @param raised           tokens whose probability rose most (steered - unsteered), largest first
     * @param lowered          tokens whose probability fell most, largest fall first
     */
    public record Step(int index, long id, String text, double logprob, double unsteeredLogprob, double addedNorm,
                       double residualNorm, double directionNorm, Double conceptLogMass, double kl,
                       List<Shift> raised, List<Shift> lowered) {
    }

    /**
     * @param perplexity         the unsteered model's perplexity of the generated tokens (fluency; lower is better)
     * @param conceptScore       mean over steps of {@code conceptLogMass} (null when the concept has no ordinary token)
     * @param msPerToken         mean time of one steered decoding forward (steps after the first)
     * @param referenceMsPerToken mean time of the unsteered forward on the same prefix (the overhead's baseline)
     */
    public record Result(Generation generation, List<Step> steps, double perplexity, Double conceptScore,
                         double msPerToken, double referenceMsPerToken) {
    }

    /**
     * @param steering  makes this run's steering in the run's manager; null runs the unsteered model (no second row)
     * @param concept   the concept prompt's ids; BOS and EOS ids are not counted as concept tokens
     * @param topShifts how many raised and lowered tokens each step reports (0: none)
     */
    public static Result run(LanguageModel model, long[] promptIds, GenerationParams params,
                             Function<NDManager, Steerer> steering, long[] concept, int topShifts) {
        return run(model, promptIds, params, steering, concept, topShifts, null);
    }

    /** As above, calling {@code onStep} (when not null) after each generated token, for streaming. */
    public static Result run(LanguageModel model, long[] promptIds, GenerationParams params,
                             Function<NDManager, Steerer> steering, long[] concept, int topShifts,
                             java.util.function.Consumer<Step> onStep) {
        Decoding d = new Decoding(model, promptIds, params, steering, concept, topShifts, onStep);
        DecodeDriver.alone(model, d);
        return d.result();
    }

    /**
     * Two runs of the same prompt decoded in lockstep, one token of each per step ({@code first}'s, then
     * {@code second}'s; a run that has stopped is skipped), so that a viewer sees both continuations grow together.
     * Each run keeps its own sampler, KV caches and steering: the results are those of two {@link #run} calls.
     *
     * @param onStep called after each token with 0 (first) or 1 (second) and the step; may be null
     * @return the two results, first then second
     */
    public static List<Result> pair(LanguageModel model, long[] promptIds, GenerationParams params,
                                    Function<NDManager, Steerer> first, int firstShifts,
                                    Function<NDManager, Steerer> second, int secondShifts, long[] concept,
                                    java.util.function.BiConsumer<Integer, Step> onStep) {
        Decoding[] both = pairOf(model, promptIds, params, first, firstShifts, second, secondShifts, concept,
                onStep);
        DecodeDriver.alone(model, both);
        return List.of(both[0].result(), both[1].result());
    }

    /** The two decodings of {@link #pair}, for a driver to run (the batched scheduler runs them as rows). */
    public static Decoding[] pairOf(LanguageModel model, long[] promptIds, GenerationParams params,
                                    Function<NDManager, Steerer> first, int firstShifts,
                                    Function<NDManager, Steerer> second, int secondShifts, long[] concept,
                                    java.util.function.BiConsumer<Integer, Step> onStep) {
        return new Decoding[] {
            new Decoding(model, promptIds, params, first, concept, firstShifts,
                    onStep == null ? null : st -> onStep.accept(0, st)),
            new Decoding(model, promptIds, params, second, concept, secondShifts,
                    onStep == null ? null : st -> onStep.accept(1, st))};
    }

    /**
     * One run's decoding state as a {@link Decode}: a driver ({@link DecodeDriver#alone}, or the batched
     * scheduler) runs its forwards; each {@link #next} samples a token with the run's own sampler and records its
     * step. A steered run has two rows: the steered model, and the unsteered model fed the same (steered) prefix,
     * so that both next-token distributions are compared in the same context.
     */
    public static final class Decoding implements Decode {
        private final LanguageModel model;
        private final long[] promptIds;
        private final GenerationParams params;
        private final int context;
        private final List<Integer> eos;
        private final int[] conceptTokens;
        private final int topShifts;
        private final Sampler sampler;
        private final long[] seq;
        private final Function<NDManager, Steerer> steering;
        private final java.util.function.Consumer<Step> onStep;
        private int len;
        private final List<GeneratedToken> out = new ArrayList<>();
        private final List<Step> steps = new ArrayList<>();
        private Generation.FinishReason finish = Generation.FinishReason.length;
        private boolean finished;
        private volatile boolean cancelled;
        private boolean stopAtEos = true;
        private long steerNs;
        private long refNs;
        private int timed;
        private long t0;
        private long tPrompt;
        private long tFirst;
        private long tEnd;
        private Steerer steerer;
        private float[] logits;
        private float[] ref;

        public Decoding(LanguageModel model, long[] promptIds, GenerationParams params,
                        Function<NDManager, Steerer> steering, long[] concept, int topShifts,
                        java.util.function.Consumer<Step> onStep) {
            if (promptIds.length == 0) {
                throw new IllegalArgumentException("empty prompt");
            }
            this.model = model;
            this.promptIds = promptIds;
            this.params = params;
            this.context = model.config().maxPositions();
            this.eos = model.config().eosTokenIds();
            this.conceptTokens = conceptTokens(model, concept);
            this.topShifts = topShifts;
            this.sampler = new Sampler(params);
            this.seq = Arrays.copyOf(promptIds, promptIds.length + params.maxNewTokens());
            this.len = promptIds.length;
            this.steering = steering;
            this.onStep = onStep;
            this.t0 = System.nanoTime();
        }

        /** Keeps going past EOS to maxNewTokens (benchmarks that need an exact length, as {@link
         * lab.steering.generate.Generator#generate}'s {@code stopAtEos}); returns this. */
        public Decoding ignoringEos() {
            stopAtEos = false;
            return this;
        }

        @Override
        public long[] prompt() {
            return promptIds;
        }

        @Override
        public int rows() {
            return steering == null ? 1 : 2;
        }

        @Override
        public Hooks[] start(NDManager m) {
            t0 = System.nanoTime();
            steerer = steering == null ? null : steering.apply(m);
            return steerer == null ? new Hooks[] {Hooks.NONE} : new Hooks[] {steerer.hooks(), Hooks.NONE};
        }

        @Override
        public void prompted(float[][] rowLogits) {
            tPrompt = System.nanoTime();
            tFirst = tPrompt;
            logits = rowLogits[0];
            ref = steerer == null ? logits : rowLogits[1];
            finished = params.maxNewTokens() <= 0;
            tEnd = finished ? tPrompt : 0;
        }

        public boolean finished() {
            return finished;
        }

        @Override
        public void cancel() {
            cancelled = true;
        }

        @Override
        public boolean cancelled() {
            return cancelled;
        }

        @Override
        public long next() {
            if (finished) {
                return -1;
            }
            int step = out.size();
            int token = sampler.next(logits, seq, len);
            seq[len++] = token;
            String piece = model.tokenizer().pieceAt(Arrays.copyOf(seq, len), len - 1);
            Step st = step(model, step, token, piece, logits, ref, steerer, conceptTokens, topShifts);
            out.add(new GeneratedToken(token, piece, st.logprob())); // Sampler.logProb's formula, one pass fewer
            steps.add(st);
            if (step == 0) {
                tFirst = System.nanoTime();
            }
            if (stopAtEos && eos.contains(token)) {
                finish = Generation.FinishReason.eos;
                finished = true;
            } else if (step == params.maxNewTokens() - 1) {
                finished = true;
            } else if (len >= context) {
                finish = Generation.FinishReason.context;
                finished = true;
            }
            if (finished) {
                tEnd = System.nanoTime();
            }
            if (onStep != null) {
                onStep.accept(st);
            }
            return finished ? -1 : token;
        }

        @Override
        public void stepped(float[][] rowLogits, long[] rowNanos) {
            logits = rowLogits[0];
            ref = steerer == null ? logits : rowLogits[1];
            steerNs += rowNanos[0];
            refNs += steerer == null ? 0 : rowNanos[1];
            timed++;
        }

        /** The finished run. */
        public Result result() {
            if (!finished) {
                throw new IllegalStateException(cancelled ? "the run was cancelled" : "the run has not finished");
            }
            long[] gen = out.stream().mapToLong(GeneratedToken::id).toArray();
            double perToken = out.size() > 1 ? (tEnd - tFirst) / 1e6 / (out.size() - 1) : (tEnd - tPrompt) / 1e6;
            Generation g = new Generation(promptIds, model.tokenizer().pieces(promptIds), List.copyOf(out),
                    model.tokenizer().decodeText(gen), finish, (tPrompt - t0) / 1e6, perToken);
            double nll = 0;
            double mass = 0;
            for (Step s : steps) {
                nll -= s.unsteeredLogprob();
                mass += s.conceptLogMass() == null ? 0 : s.conceptLogMass();
            }
            Double score = conceptTokens.length == 0 || steps.isEmpty() ? null : mass / steps.size();
            return new Result(g, List.copyOf(steps), Math.exp(nll / Math.max(1, steps.size())), score,
                    timed == 0 ? 0 : steerNs / 1e6 / timed, timed == 0 || steerer == null ? 0 : refNs / 1e6 / timed);
        }
    }

    /** The concept's distinct token ids, without BOS and EOS. */
    static int[] conceptTokens(LanguageModel model, long[] concept) {
        Set<Integer> special = new LinkedHashSet<>(model.config().eosTokenIds());
        special.add(model.config().bosTokenId());
        Set<Integer> out = new LinkedHashSet<>();
        for (long id : concept) {
            if (!special.contains((int) id)) {
                out.add((int) id);
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * The step's diagnostics from the two distributions' logits, in two passes of exp at most (this runs for every
     * row of every batched step): log-probabilities as {@code l - max - log(sum exp(l - max))}, KL as
     * {@code sum_i p_i (l_i - r_i) - lse(l) + lse(r)}.
     */
    private static Step step(LanguageModel model, int index, int next, String piece, float[] logits, float[] ref,
                             Steerer steerer, int[] conceptTokens, int topShifts) {
        double[] e = new double[logits.length];
        double maxP = max(logits);
        double sumP = 0;
        for (int i = 0; i < e.length; i++) {
            e[i] = Math.exp(logits[i] - maxP);
            sumP += e[i];
        }
        double logSumP = Math.log(sumP);
        double lp = logits[next] - maxP - logSumP;
        double lq = lp;
        double kl = 0;
        if (ref != logits) {
            double maxQ = max(ref);
            double sumQ = 0;
            for (float r : ref) {
                sumQ += Math.exp(r - maxQ);
            }
            double logSumQ = Math.log(sumQ);
            lq = ref[next] - maxQ - logSumQ;
            double cross = 0;
            for (int i = 0; i < e.length; i++) {
                cross += e[i] * ((double) logits[i] - ref[i]);
            }
            kl = cross / sumP - (maxP + logSumP) + (maxQ + logSumQ);
        }
        Double conceptLogMass = null;
        if (conceptTokens.length > 0) {
            double s = 0;
            for (int c : conceptTokens) {
                s += c < e.length ? e[c] : 0;
            }
            conceptLogMass = Math.log(Math.max(s / sumP, Double.MIN_NORMAL));
        }
        List<Shift> raised = List.of();
        List<Shift> lowered = List.of();
        if (topShifts > 0 && steerer != null) {
            double[] p = new double[e.length];
            for (int i = 0; i < p.length; i++) {
                p[i] = e[i] / sumP;
            }
            double[] q = ref == logits ? p : softmax(ref);
            raised = top(model, p, q, topShifts, 1);
            lowered = top(model, p, q, topShifts, -1);
        }
        return new Step(index, next, piece, lp, lq,
                steerer == null ? 0 : steerer.lastAddedNorm(), steerer == null ? 0 : steerer.lastResidualNorm(),
                steerer == null ? 0 : steerer.lastDirectionNorm(), conceptLogMass, Math.max(0, kl), raised, lowered);
    }

    private static double max(float[] xs) {
        double m = Double.NEGATIVE_INFINITY;
        for (float x : xs) {
            m = Math.max(m, x);
        }
        return m;
    }

    /** The k tokens with the largest {@code sign * (p - q)} and a non-zero change, largest first. */
    static List<Shift> top(LanguageModel model, double[] p, double[] q, int k, int sign) {
        PriorityQueue<Integer> heap = new PriorityQueue<>(
                (a, b) -> Double.compare(sign * (p[a] - q[a]), sign * (p[b] - q[b])));
        for (int i = 0; i < p.length; i++) {
            if (sign * (p[i] - q[i]) <= 0) {
                continue;
            }
            heap.add(i);
            if (heap.size() > k) {
                heap.poll();
            }
        }
        List<Shift> out = new ArrayList<>();
        while (!heap.isEmpty()) {
            int i = heap.poll();
            out.add(0, new Shift(i, model.tokenizer().decode(new long[] {i}), q[i], p[i]));
        }
        return out;
    }

    static double[] softmax(float[] logits) {
        double max = max(logits);
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp(logits[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }
}
