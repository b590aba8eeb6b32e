package lab.steering.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Count-based baselines on the same token ids the model is trained and validated on (a run folder's
 * {@code tokens-*.i32}). Every model predicts the same validation targets: ids 1 .. n-1 of the validation stream,
 * the bigrams from the id before (the transformer predicts the same ids, see {@link TrainModel#streamNll}).
 * <ul>
 *   <li>unigram, add-one: {@code p(w) = (c(w) + 1) / (N + V)};</li>
 *   <li>bigram, Jelinek-Mercer: {@code p(w|u) = l c(u,w)/c(u) + (1 - l) p_uni(w)} ({@code p_uni} when u was never a
 *       history);</li>
 *   <li>bigram, interpolated Kneser-Ney: {@code p(w|u) = max(c(u,w) - D, 0)/c(u) + D N1+(u.)/c(u) p_cont(w)} with
 *       {@code p_cont(w) = (N1+(.w) + 1) / (N1+(..) + V)} (continuation counts, add-one so unseen ids keep mass).</li>
 * </ul>
 * l and D are tuned by grid search on held-out ids (every 20th block of {@value #BLOCK} training ids: the training
 * stream is ordered by source, so a tail slice would tune on one source alone), with counts from the other blocks;
 * the final counts use all training ids. The reported "bigram" is the better of the two on the validation ids
 * (the stronger baseline).
 *
 * <pre>java lab.steering.train.NgramBaseline --out RUN</pre> writes {@code RUN/baselines.json}.
 */
public final class NgramBaseline {

    private static final ObjectMapper JSON = new ObjectMapper();

    private NgramBaseline() {
    }

    public static void main(String[] args) throws IOException {
        TrainArgs a = TrainArgs.parse(args);
        Path run = Path.of(a.get("out", "target/train"));
        TokenData.Tokens t = TokenData.load(run);
        long t0 = System.nanoTime();
        ObjectNode r = report(t.train(), t.valid(), t.vocabSize());
        r.put("seconds", (System.nanoTime() - t0) / 1e9);
        JSON.writerWithDefaultPrettyPrinter().writeValue(run.resolve("baselines.json").toFile(), r);
        System.out.printf(java.util.Locale.ROOT,
                "NgramBaseline: validation perplexity over %,d ids: unigram %.2f, bigram JM %.2f (lambda %.2f), "
                        + "bigram KN %.2f (D %.2f)%n",
                r.get("validTokensPredicted").asLong(), r.get("unigram").get("ppl").asDouble(),
                r.get("bigramJelinekMercer").get("ppl").asDouble(), r.get("bigramJelinekMercer").get("lambda").asDouble(),
                r.get("bigramKneserNey").get("ppl").asDouble(), r.get("bigramKneserNey").get("discount").asDouble());
    }

    /** Tunes on a held-out slice of train, evaluates on valid, and describes it all as JSON. */
    public static ObjectNode report(int[] train, int[] valid, int vocab) {
        int[][] split = heldOut(train);
        int[] fit = split[0];
        int[] held = split[1];
        Counts heldCounts = new Counts(fit, vocab);
        double[] jmBest = gridMin(l -> heldCounts.jmPpl(held, l));
        double[] knBest = gridMin(d -> heldCounts.knPpl(held, d));
        double bestL = jmBest[0];
        double bestLppl = jmBest[1];
        double bestD = knBest[0];
        double bestDppl = knBest[1];
        Counts c = new Counts(train, vocab);
        ObjectNode r = JSON.createObjectNode();
        r.put("trainTokens", train.length);
        r.put("validTokensPredicted", valid.length - 1);
        r.put("vocabSize", vocab);
        r.put("targets", "validation ids 1..n-1, each from the id before (bigrams) or alone (unigram)");
        r.put("tuning", "grid search (0.01 steps) on every 20th block of " + BLOCK
                + " training ids, counts from the other blocks");
        ObjectNode uni = r.putObject("unigram");
        uni.put("smoothing", "add-one");
        uni.put("ppl", c.unigramPpl(valid));
        ObjectNode jm = r.putObject("bigramJelinekMercer");
        jm.put("lambda", bestL);
        jm.put("heldOutPpl", bestLppl);
        jm.put("ppl", c.jmPpl(valid, bestL));
        ObjectNode kn = r.putObject("bigramKneserNey");
        kn.put("discount", bestD);
        kn.put("heldOutPpl", bestDppl);
        kn.put("ppl", c.knPpl(valid, bestD));
        boolean knBetter = kn.get("ppl").asDouble() <= jm.get("ppl").asDouble();
        r.put("bigram", knBetter ? "bigramKneserNey" : "bigramJelinekMercer");
        r.put("bigramPpl", Math.min(kn.get("ppl").asDouble(), jm.get("ppl").asDouble()));
        return r;
    }

    /** {x, f(x)} at the x of 0.01, 0.02, ..., 0.99 where f is least (the first such x). */
    static double[] gridMin(java.util.function.DoubleUnaryOperator f) {
        double best = 0;
        double bestValue = Double.POSITIVE_INFINITY;
        for (int i = 1; i <= 99; i++) {
            double x = i / 100.0;
            double v = f.applyAsDouble(x);
            if (v < bestValue) {
                bestValue = v;
                best = x;
            }
        }
        return new double[] {best, bestValue};
    }

    static final int BLOCK = 4096;

    /**
     * {fit, held}: every 20th block of {@link #BLOCK} ids is held out (each held block keeps the id before it, so that
     * its first bigram is a real one), the rest is for counting.
     */
    static int[][] heldOut(int[] train) {
        int[] fit = new int[train.length];
        int[] held = new int[train.length + train.length / BLOCK + 1];
        int nf = 0;
        int nh = 0;
        for (int start = 0, b = 0; start < train.length; start += BLOCK, b++) {
            int end = Math.min(train.length, start + BLOCK);
            if (b % 20 == 19) {
                held[nh++] = train[start - 1];
                System.arraycopy(train, start, held, nh, end - start);
                nh += end - start;
            } else {
                System.arraycopy(train, start, fit, nf, end - start);
                nf += end - start;
            }
        }
        if (nh == 0) { // a stream shorter than 20 blocks: the last 5%, as before
            int cut = (int) (train.length * 0.95);
            return new int[][] {Arrays.copyOfRange(train, 0, cut), Arrays.copyOfRange(train, cut - 1, train.length)};
        }
        return new int[][] {Arrays.copyOf(fit, nf), Arrays.copyOf(held, nh)};
    }

    /** Unigram and bigram counts of one token stream. */
    public static final class Counts {
        final int vocab;
        final long n;              // tokens
        final long[] uni;          // c(w)
        final long[] hist;         // c(u): times u is followed by something
        final long[] followers;    // N1+(u.): distinct w after u
        final long[] preceders;    // N1+(.w): distinct u before w
        final long distinctBigrams; // N1+(..)
        final long[] keys;         // sorted distinct u * vocab + w
        final int[] counts;        // c(u, w) for keys

        public Counts(int[] ids, int vocab) {
            this.vocab = vocab;
            this.n = ids.length;
            uni = new long[vocab];
            hist = new long[vocab];
            followers = new long[vocab];
            preceders = new long[vocab];
            for (int id : ids) {
                uni[id]++;
            }
            long[] all = new long[Math.max(0, ids.length - 1)];
            for (int i = 1; i < ids.length; i++) {
                hist[ids[i - 1]]++;
                all[i - 1] = (long) ids[i - 1] * vocab + ids[i];
            }
            Arrays.sort(all);
            int distinct = 0;
            for (int i = 0; i < all.length; i++) {
                if (i == 0 || all[i] != all[i - 1]) {
                    distinct++;
                }
            }
            keys = new long[distinct];
            counts = new int[distinct];
            int k = -1;
            for (int i = 0; i < all.length; i++) {
                if (i == 0 || all[i] != all[i - 1]) {
                    keys[++k] = all[i];
                    followers[(int) (all[i] / vocab)]++;
                    preceders[(int) (all[i] % vocab)]++;
                }
                counts[k]++;
            }
            distinctBigrams = distinct;
        }

        long bigram(int u, int w) {
            int i = Arrays.binarySearch(keys, (long) u * vocab + w);
            return i >= 0 ? counts[i] : 0;
        }

        double unigramP(int w) {
            return (uni[w] + 1.0) / (n + vocab);
        }

        double jmP(int u, int w, double lambda) {
            double pu = unigramP(w);
            return hist[u] == 0 ? pu : lambda * bigram(u, w) / hist[u] + (1 - lambda) * pu;
        }

        double knP(int u, int w, double d) {
            double cont = (preceders[w] + 1.0) / (distinctBigrams + vocab);
            if (hist[u] == 0) {
                return cont;
            }
            return Math.max(bigram(u, w) - d, 0) / hist[u] + d * followers[u] / hist[u] * cont;
        }

        /** Perplexity of ids 1..n-1 of {@code eval} under the add-one unigram. */
        public double unigramPpl(int[] eval) {
            double s = 0;
            for (int i = 1; i < eval.length; i++) {
                s -= Math.log(unigramP(eval[i]));
            }
            return Math.exp(s / (eval.length - 1));
        }

        public double jmPpl(int[] eval, double lambda) {
            double s = 0;
            for (int i = 1; i < eval.length; i++) {
                s -= Math.log(jmP(eval[i - 1], eval[i], lambda));
            }
            return Math.exp(s / (eval.length - 1));
        }

        public double knPpl(int[] eval, double d) {
            double s = 0;
            for (int i = 1; i < eval.length; i++) {
                s -= Math.log(knP(eval[i - 1], eval[i], d));
            }
            return Math.exp(s / (eval.length - 1));
        }
    }
}
