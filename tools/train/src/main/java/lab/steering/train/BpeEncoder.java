package lab.steering.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The project's own byte-level BPE encoder and decoder, reading the vocab and merges of a {@code tokenizer.json}.
 * It exists to check the written file against the library: the same text must give the same ids here and in DJL's
 * Hugging Face tokenizer. Encoding: pre-tokenize with {@link ByteLevel#PRETOKENIZER}, map bytes to byte
 * characters, then repeatedly merge the adjacent pair of lowest merge rank (all its occurrences, left to right)
 * until no pair has a merge. Special tokens in the input text are not recognised (the corpus has none).
 */
public final class BpeEncoder {

    private final List<String> tokens;
    private final Map<String, Integer> vocab;
    /** (left id, right id) -> {rank, result id}. */
    private final Map<Long, int[]> merges;
    private final Map<String, int[]> cache = new HashMap<>();
    private final Integer bos;

    public BpeEncoder(Map<String, Integer> vocab, List<String[]> mergePairs, String bosToken) {
        this.vocab = new HashMap<>(vocab);
        String[] byId = new String[vocab.size()];
        vocab.forEach((tok, id) -> byId[id] = tok);
        this.tokens = List.of(byId);
        this.merges = new HashMap<>();
        for (int r = 0; r < mergePairs.size(); r++) {
            String[] p = mergePairs.get(r);
            Integer a = vocab.get(p[0]);
            Integer b = vocab.get(p[1]);
            Integer t = vocab.get(p[0] + p[1]);
            if (a == null || b == null || t == null) {
                throw new IllegalArgumentException("merge " + r + " uses unknown tokens: " + p[0] + " " + p[1]);
            }
            merges.putIfAbsent(key(a, b), new int[] {r, t});
        }
        this.bos = bosToken == null ? null : vocab.get(bosToken);
    }

    /** Loads vocab and merges (string or pair form) from a tokenizer.json. */
    public static BpeEncoder load(Path tokenizerJson) throws IOException {
        JsonNode root = new ObjectMapper().readTree(Files.readString(tokenizerJson));
        JsonNode model = root.get("model");
        Map<String, Integer> vocab = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = model.get("vocab").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            vocab.put(e.getKey(), e.getValue().asInt());
        }
        List<String[]> merges = new ArrayList<>();
        for (JsonNode m : model.get("merges")) {
            if (m.isArray()) {
                merges.add(new String[] {m.get(0).asText(), m.get(1).asText()});
            } else {
                String s = m.asText();
                int sp = s.indexOf(' ');
                merges.add(new String[] {s.substring(0, sp), s.substring(sp + 1)});
            }
        }
        return new BpeEncoder(vocab, merges, BpeTrainer.BOS);
    }

    private static long key(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    /** Token ids of the text, with {@code <|bos|>} first when addBos. */
    public List<Integer> encode(String text, boolean addBos) {
        List<Integer> out = new ArrayList<>();
        if (addBos) {
            out.add(bos);
        }
        for (String piece : ByteLevel.pretokenize(text)) {
            for (int id : encodePiece(ByteLevel.toByteChars(piece))) {
                out.add(id);
            }
        }
        return out;
    }

    private int[] encodePiece(String chars) {
        int[] cached = cache.get(chars);
        if (cached != null) {
            return cached;
        }
        int[] sym = new int[chars.length()];
        for (int i = 0; i < sym.length; i++) {
            sym[i] = vocab.get(String.valueOf(chars.charAt(i)));
        }
        int len = sym.length;
        while (len > 1) {
            int bestRank = Integer.MAX_VALUE;
            int bestA = -1;
            int bestB = -1;
            int bestT = -1;
            for (int i = 0; i + 1 < len; i++) {
                int[] m = merges.get(key(sym[i], sym[i + 1]));
                if (m != null && m[0] < bestRank) {
                    bestRank = m[0];
                    bestA = sym[i];
                    bestB = sym[i + 1];
                    bestT = m[1];
                }
            }
            if (bestT < 0) {
                break;
            }
            int o = 0;
            for (int i = 0; i < len; i++) {
                if (i + 1 < len && sym[i] == bestA && sym[i + 1] == bestB) {
                    sym[o++] = bestT;
                    i++;
                } else {
                    sym[o++] = sym[i];
                }
            }
            len = o;
        }
        int[] result = java.util.Arrays.copyOf(sym, len);
        if (cache.size() < 1_000_000) {
            cache.put(chars, result);
        }
        return result;
    }

    /** Text of the ids; special tokens are skipped. */
    public String decode(List<Integer> ids) {
        StringBuilder b = new StringBuilder();
        for (int id : ids) {
            String t = tokens.get(id);
            if (!BpeTrainer.SPECIALS.contains(t)) {
                b.append(t);
            }
        }
        return ByteLevel.fromByteChars(b);
    }

    /** The token string (byte characters) of an id. */
    public String token(int id) {
        return tokens.get(id);
    }

    public int vocabSize() {
        return tokens.size();
    }
}
