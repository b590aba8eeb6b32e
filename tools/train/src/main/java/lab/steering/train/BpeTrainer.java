package lab.steering.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * Trains a byte-level BPE tokenizer (GPT-2 style) and writes it in Hugging Face's {@code tokenizer.json} format.
 *
 * <pre>
 * java lab.steering.train.BpeTrainer --corpus target/corpus/train.txt --out target/corpus/tokenizer
 *      [--vocab-size 4096] [--model-max-length 1024]
 * </pre>
 *
 * <p>Ids: {@code <|bos|>} = 0, {@code <|eos|>} = 1, the 256 byte tokens = 2..257 (byte b has id b + 2), then one id
 * per new token in the order learned, up to {@code vocab-size} ids in all (4096: 3838 new tokens; as in HF's trainer
 * a merge whose result string already exists reuses that token, so there can be slightly more merges than new ids).
 *
 * <p>Training: every document of the corpus (split on the empty lines between documents) is pre-tokenized with
 * {@link ByteLevel#PRETOKENIZER}; distinct pre-tokens are counted once. Pair counts over all distinct words are then
 * kept up to date incrementally: each merge visits only the words that contain the pair (an index from pair to
 * words), computes the change of their pair counts, and pushes changed counts onto a priority queue whose stale
 * entries are skipped when popped. The most frequent pair wins; ties go to the pair with the smaller
 * (left id, right id), so training is deterministic.
 */
public final class BpeTrainer {

    public static final String BOS = "<|bos|>";
    public static final String EOS = "<|eos|>";
    public static final List<String> SPECIALS = List.of(BOS, EOS);
    public static final int FIRST_BYTE_ID = SPECIALS.size();
    public static final int DEFAULT_VOCAB_SIZE = 4096;

    /** A trained model: token strings by id, and merges as (left id, right id) in rank order. */
    public record Model(List<String> tokens, List<int[]> merges) {
    }

    /** Counts and timings of one training run. */
    public record Report(long documents, long pretokens, int distinctWords, int merges, double countSeconds,
            double mergeSeconds) {
    }

    public static void main(String[] args) throws IOException {
        Map<String, String> a = Args.parse(args);
        Path corpus = Path.of(a.getOrDefault("corpus", "target/corpus/train.txt"));
        Path out = Path.of(a.getOrDefault("out", "target/corpus/tokenizer"));
        int vocabSize = Integer.parseInt(a.getOrDefault("vocab-size", Integer.toString(DEFAULT_VOCAB_SIZE)));
        int maxLength = Integer.parseInt(a.getOrDefault("model-max-length", "1024"));

        long t0 = System.nanoTime();
        List<String> docs = CorpusBuilder.readDocs(corpus);
        Map<String, Long> counts = countWords(docs);
        long pretokens = counts.values().stream().mapToLong(Long::longValue).sum();
        long t1 = System.nanoTime();
        Model model = train(counts, vocabSize);
        long t2 = System.nanoTime();
        Report report = new Report(docs.size(), pretokens, counts.size(), model.merges().size(), (t1 - t0) / 1e9,
                (t2 - t1) / 1e9);
        TokenizerFiles.write(out, model, maxLength, report);
        System.out.printf("BpeTrainer: %d documents, %d pre-tokens, %d distinct; %d merges -> vocab %d;"
                        + " counting %.1f s, merges %.1f s -> %s%n", report.documents(), report.pretokens(),
                report.distinctWords(), report.merges(), model.tokens().size(), report.countSeconds(),
                report.mergeSeconds(), out.resolve("tokenizer.json"));
    }

    /** Counts the byte-level pre-tokens of the given documents. */
    public static Map<String, Long> countWords(List<String> docs) {
        Map<String, long[]> raw = new HashMap<>();
        for (String d : docs) {
            for (String piece : ByteLevel.pretokenize(d)) {
                raw.computeIfAbsent(piece, k -> new long[1])[0]++;
            }
        }
        Map<String, Long> counts = new HashMap<>(raw.size() * 2);
        raw.forEach((piece, c) -> counts.merge(ByteLevel.toByteChars(piece), c[0], Long::sum));
        return counts;
    }

    private static long key(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    /** Trains merges on word counts (keys are byte-character strings) until the vocabulary has vocabSize ids. */
    public static Model train(Map<String, Long> wordCounts, int vocabSize) {
        int base = FIRST_BYTE_ID + 256;
        if (vocabSize < base) {
            throw new IllegalArgumentException("vocab size must be at least " + base);
        }
        List<String> tokens = new ArrayList<>(vocabSize);
        tokens.addAll(SPECIALS);
        Map<Character, Integer> byteId = new HashMap<>();
        Map<String, Integer> tokenId = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            char c = ByteLevel.byteChar(b);
            byteId.put(c, tokens.size());
            tokenId.put(String.valueOf(c), tokens.size());
            tokens.add(String.valueOf(c));
        }

        // words in a fixed order (sorted) so that ids and ties never depend on hash order
        List<String> keys = new ArrayList<>(wordCounts.keySet());
        keys.sort(Comparator.naturalOrder());
        int n = keys.size();
        int[][] words = new int[n][];
        long[] freq = new long[n];
        for (int w = 0; w < n; w++) {
            String s = keys.get(w);
            int[] sym = new int[s.length()];
            for (int i = 0; i < s.length(); i++) {
                sym[i] = byteId.get(s.charAt(i));
            }
            words[w] = sym;
            freq[w] = wordCounts.get(s);
        }

        Map<Long, Long> pairCount = new HashMap<>();
        Map<Long, IntList> where = new HashMap<>();
        for (int w = 0; w < n; w++) {
            int[] sym = words[w];
            for (int i = 0; i + 1 < sym.length; i++) {
                long k = key(sym[i], sym[i + 1]);
                pairCount.merge(k, freq[w], Long::sum);
                where.computeIfAbsent(k, x -> new IntList()).add(w);
            }
        }
        // entries {count, pairKey}: highest count first, then smallest pair
        PriorityQueue<long[]> queue = new PriorityQueue<>((x, y) -> x[0] != y[0] ? Long.compare(y[0], x[0])
                : Long.compare(x[1], y[1]));
        pairCount.forEach((k, c) -> queue.add(new long[] {c, k}));

        List<int[]> merges = new ArrayList<>();
        int[] stamp = new int[n];
        java.util.Arrays.fill(stamp, -1);
        Map<Long, Long> delta = new HashMap<>();
        while (tokens.size() < vocabSize && !queue.isEmpty()) {
            long[] top = queue.poll();
            Long current = pairCount.get(top[1]);
            if (current == null || current != top[0]) {
                if (current != null && current > 0 && current < top[0]) {
                    queue.add(new long[] {current, top[1]});
                }
                continue;
            }
            int a = (int) (top[1] >>> 32);
            int b = (int) top[1];
            // as in HF's trainer: a merge whose string already is a token (a+bc vs ab+c) reuses that id
            String merged0 = tokens.get(a) + tokens.get(b);
            Integer existing = tokenId.get(merged0);
            int t = existing != null ? existing : tokens.size();
            if (existing == null) {
                tokens.add(merged0);
                tokenId.put(merged0, t);
            }
            merges.add(new int[] {a, b});
            int m = merges.size();

            delta.clear();
            IntList ws = where.remove(top[1]);
            for (int j = 0; j < ws.size; j++) {
                int w = ws.data[j];
                if (stamp[w] == m) {
                    continue;
                }
                stamp[w] = m;
                int[] sym = words[w];
                int hits = 0;
                for (int i = 0; i + 1 < sym.length; i++) {
                    if (sym[i] == a && sym[i + 1] == b) {
                        hits++;
                        i++;
                    }
                }
                if (hits == 0) {
                    continue;
                }
                long f = freq[w];
                for (int i = 0; i + 1 < sym.length; i++) {
                    delta.merge(key(sym[i], sym[i + 1]), -f, Long::sum);
                }
                int[] merged = new int[sym.length - hits];
                int o = 0;
                for (int i = 0; i < sym.length; i++) {
                    if (i + 1 < sym.length && sym[i] == a && sym[i + 1] == b) {
                        merged[o++] = t;
                        i++;
                    } else {
                        merged[o++] = sym[i];
                    }
                }
                words[w] = merged;
                for (int i = 0; i + 1 < merged.length; i++) {
                    long k = key(merged[i], merged[i + 1]);
                    delta.merge(k, f, Long::sum);
                    if (merged[i] == t || merged[i + 1] == t) {
                        where.computeIfAbsent(k, x -> new IntList()).add(w);
                    }
                }
            }
            pairCount.remove(top[1]);
            delta.remove(top[1]);
            for (Map.Entry<Long, Long> e : delta.entrySet()) {
                long d = e.getValue();
                if (d == 0) {
                    continue;
                }
                long c = pairCount.getOrDefault(e.getKey(), 0L) + d;
                if (c <= 0) {
                    pairCount.remove(e.getKey());
                    where.remove(e.getKey());
                } else {
                    pairCount.put(e.getKey(), c);
                    if (d > 0) {
                        queue.add(new long[] {c, e.getKey()});
                    }
                }
            }
        }
        return new Model(List.copyOf(tokens), List.copyOf(merges));
    }

    /** A growable int array. */
    static final class IntList {
        int[] data = new int[4];
        int size;

        void add(int v) {
            if (size == data.length) {
                data = java.util.Arrays.copyOf(data, size * 2);
            }
            data[size++] = v;
        }
    }
}
