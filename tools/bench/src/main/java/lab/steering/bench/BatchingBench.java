package lab.steering.bench;

import ai.djl.Device;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import lab.steering.generate.BatchDecoder;
import lab.steering.generate.DecodeDriver;
import lab.steering.generate.GeneratedToken;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import lab.steering.steer.Injector;
import lab.steering.steer.OperatorBuilder;
import lab.steering.steer.SteeredRun;
import lab.steering.steer.SteeringOperator;

/**
 * Batched decoding against the same work decoded one request after another, measured in one run (issue 15):
 * {@code scripts/bench.sh batching [model folder] [--rows 32]}.
 * <ul>
 *   <li>streams: 1, 4, 16 and 32 concurrent clients, each sending three greedy generations of exactly 64 new
 *       tokens (everyday prompts; EOS does not stop them) one after another, through a {@link BatchDecoder} with {@code --rows} places, against the
 *       same requests run one after another unbatched ({@link DecodeDriver#alone}); aggregate generated tokens per
 *       second of each and the ratio;</li>
 *   <li>a sweep: 24 cells (6 strengths x 4 layers) of an operator on one prompt, 32 new tokens, plus the baseline,
 *       as the sweep job runs them (all cells submitted at once), against cell by cell.</li>
 * </ul>
 * Every batched continuation is checked against its unbatched one (greedy ids identical); a mismatch is printed.
 * Each figure is the best of {@code --repeats} (default 2) rounds, batched and unbatched alternating.
 */
public final class BatchingBench {

    static final String[] PROMPTS = {
        "Once upon a time, there was a little girl named Lily. One day,", "The old man walked down the road to the",
        "After breakfast, we went to the", "She opened the door and saw", "It was a quiet morning, and",
        "The weather today is", "I went to the market and", "My father told me that",
        "The best way to learn is", "When the children came home from school,", "He looked out of the window and",
        "The old man walked slowly", "In the morning, the town", "The dog barked at the",
        "They sat by the fire and told", "The ship sailed across the", "He played a song on the",
        "The king lived in a big", "She poured a cup of hot", "The children played in the snow and built a",
        "My favourite food is", "Every summer, my family", "The teacher asked the class", "At night, the sky was",
        "The little bird", "On the way to school, Tom", "Grandma baked a", "The river was",
        "There was once a farmer who", "The president said that", "In the garden, we found", "The train",
    };

    /** Requests each stream sends one after another. */
    static final int PER_STREAM = 3;

    private BatchingBench() {
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", "true");
        Path folder = Path.of("models/steering-lab-base");
        int rows = 32;
        int repeats = 2;
        int[] streams = {1, 4, 16, 32};
        boolean sweep = true;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--streams" -> streams = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt)
                        .toArray();
                case "--no-sweep" -> sweep = false;
                case "--rows" -> rows = Integer.parseInt(args[++i]);
                case "--repeats" -> repeats = Integer.parseInt(args[++i]);
                default -> folder = Path.of(args[i]);
            }
        }
        try (LanguageModel model = LanguageModel.load(folder, Device.cpu());
             BatchDecoder batch = new BatchDecoder(model, rows, 1 << 20)) {
            System.out.printf(Locale.ROOT, "model %s (%s), %d places per step, %d cores, best of %d%n%n", model.id(),
                    folder, rows, Runtime.getRuntime().availableProcessors(), repeats);
            GenerationParams greedy64 = GenerationParams.greedy(64);
            streams(model, batch, greedy64, 4, 1); // warm-up (JIT, allocator)
            System.out.println("| streams | tokens | batched tok/s | one after another tok/s | speed-up | identical |");
            System.out.println("|---:|---:|---:|---:|---:|---|");
            for (int n : streams) {
                Round best = null;
                for (int r = 0; r < repeats; r++) {
                    Round round = streams(model, batch, greedy64, n, r);
                    best = best == null || round.speedUp() > best.speedUp() ? round : best;
                }
                System.out.printf(Locale.ROOT, "| %d | %d | %.0f | %.0f | **%.1fx** | %s |%n", n, best.tokens,
                        best.tokens / best.batchedS, best.tokens / best.aloneS, best.speedUp(),
                        best.identical ? "yes" : "NO");
            }
            BatchDecoder.Stats st = batch.stats();
            System.out.printf(Locale.ROOT, "%nbatched steps %d, rows per step %.1f on average, at most %d; time in"
                            + " prompts %.1f s, batched forwards %.1f s (%.1f ms a step), decodings' own work %.1f s%n",
                    st.steps(), (double) st.rowSteps() / Math.max(1, st.steps()), st.maxRowsSeen(), st.promptS(),
                    st.forwardS(), 1e3 * st.forwardS() / Math.max(1, st.steps()), st.hostS());
            if (!sweep) {
                return;
            }
            System.out.println();
            System.out.println("| sweep | rows | batched s | cell by cell s | speed-up | identical |");
            System.out.println("|---|---:|---:|---:|---:|---|");
            Round best = null;
            for (int r = 0; r < repeats; r++) {
                Round round = sweep(model, batch);
                best = best == null || round.speedUp() > best.speedUp() ? round : best;
            }
            System.out.printf(Locale.ROOT, "| 24 cells + baseline, 32 tokens | 49 | %.2f | %.2f | **%.1fx** | %s |%n",
                    best.batchedS, best.aloneS, best.speedUp(), best.identical ? "yes" : "NO");
        }
    }

    record Round(int tokens, double batchedS, double aloneS, boolean identical) {
        double speedUp() {
            return aloneS / batchedS;
        }
    }

    /**
     * {@code n} streams, each a client that sends {@link #PER_STREAM} greedy requests one after another (its next
     * request as soon as its last answer is complete), all streams at once through the batch; against every request
     * one after another alone.
     */
    static Round streams(LanguageModel model, BatchDecoder batch, GenerationParams p, int n, int round)
            throws Exception {
        List<long[]> prompts = new ArrayList<>();
        for (int i = 0; i < n * PER_STREAM; i++) {
            prompts.add(model.tokenizer().encode(PROMPTS[(i + round * 7) % PROMPTS.length]));
        }
        List<SteeredRun.Decoding> batched = new ArrayList<>();
        for (long[] ids : prompts) {
            batched.add(new SteeredRun.Decoding(model, ids, p, null, new long[0], 0, null).ignoringEos());
        }
        long t0 = System.nanoTime();
        List<CompletableFuture<Void>> clients = new ArrayList<>();
        for (int c = 0; c < n; c++) {
            CompletableFuture<Void> chain = CompletableFuture.completedFuture(null);
            for (int k = 0; k < PER_STREAM; k++) {
                SteeredRun.Decoding d = batched.get(k * n + c);
                chain = chain.thenCompose(v -> batch.submit(d));
            }
            clients.add(chain);
        }
        CompletableFuture.allOf(clients.toArray(CompletableFuture[]::new)).get(30, TimeUnit.MINUTES);
        double batchedS = (System.nanoTime() - t0) / 1e9;
        List<SteeredRun.Decoding> alone = new ArrayList<>();
        t0 = System.nanoTime();
        for (long[] ids : prompts) {
            SteeredRun.Decoding d = new SteeredRun.Decoding(model, ids, p, null, new long[0], 0, null).ignoringEos();
            DecodeDriver.alone(model, d);
            alone.add(d);
        }
        double aloneS = (System.nanoTime() - t0) / 1e9;
        return compare(batched, alone, batchedS, aloneS);
    }

    /** The sweep job's work: 24 steered cells and the baseline at once, against one after another. */
    static Round sweep(LanguageModel model, BatchDecoder batch) throws Exception {
        long[] concept = model.tokenizer().encode("The dog barked at the cat in the garden");
        long[] prompt = model.tokenizer().encode("Once upon a time, there was a little girl named Lily. One day,");
        int layers = model.config().numLayers();
        SteeringOperator base = OperatorBuilder.full(model, concept, OperatorBuilder.defaultLayer(layers),
                model.dataType(), r -> { });
        List<SteeringOperator> ops = new ArrayList<>();
        for (int l = Math.max(1, layers - 4); l < layers; l++) {
            ops.add(OperatorBuilder.atLayer(model, base, l));
        }
        double[] strengths = {0.5, 1, 1.5, 2, 3, 4};
        GenerationParams p = GenerationParams.greedy(32);
        List<List<SteeredRun.Decoding>> both = new ArrayList<>();
        for (int side = 0; side < 2; side++) {
            List<SteeredRun.Decoding> ds = new ArrayList<>();
            ds.add(new SteeredRun.Decoding(model, prompt, p, null, concept, 0, null));
            for (SteeringOperator op : ops) {
                for (double s : strengths) {
                    ds.add(new SteeredRun.Decoding(model, prompt, p, m -> new Injector(op, s, m, model.dataType()),
                            concept, 0, null));
                }
            }
            both.add(ds);
        }
        long t0 = System.nanoTime();
        batch.submitQueued(both.get(0).toArray(SteeredRun.Decoding[]::new)).get(30, TimeUnit.MINUTES);
        double batchedS = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        for (SteeredRun.Decoding d : both.get(1)) {
            DecodeDriver.alone(model, d);
        }
        double aloneS = (System.nanoTime() - t0) / 1e9;
        return compare(both.get(0), both.get(1), batchedS, aloneS);
    }

    static Round compare(List<SteeredRun.Decoding> batched, List<SteeredRun.Decoding> alone, double batchedS,
                         double aloneS) {
        int tokens = 0;
        boolean same = true;
        for (int i = 0; i < batched.size(); i++) {
            long[] a = ids(batched.get(i));
            long[] b = ids(alone.get(i));
            tokens += b.length;
            if (!Arrays.equals(a, b)) {
                same = false;
                System.out.printf("mismatch in continuation %d:%n  batched %s%n  alone   %s%n", i,
                        Arrays.toString(a), Arrays.toString(b));
            }
        }
        return new Round(tokens, batchedS, aloneS, same);
    }

    static long[] ids(SteeredRun.Decoding d) {
        return d.result().generation().tokens().stream().mapToLong(GeneratedToken::id).toArray();
    }
}
