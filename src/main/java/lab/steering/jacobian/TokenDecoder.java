package lab.steering.jacobian;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import lab.steering.model.LanguageModel;
import lab.steering.model.Transformer;
import lab.steering.model.Weights;

/**
 * Reads vectors as tokens (METHOD.md section 4): output-space vectors (left singular vectors u, hidden states y)
 * through lm_head directly (they already carry the final norm's weight), top tokens by logit; input-space vectors
 * (right singular vectors v) by cosine similarity to the input embedding rows. All vectors of one call go through
 * one matmul. The opposite sign comes for free: the top tokens of -u are the bottom tokens of u.
 *
 * <p>One instance per model, reused across requests: it keeps the embedding rows' inverse norms and the token
 * texts as plain arrays (no NDArray outlives a call). Thread-safe.
 */
public final class TokenDecoder {

    /** A token and its score (a logit, or a cosine similarity). */
    public record Scored(long id, String token, double score) {
    }

    /**
     * Top tokens of a vector, and of its negation when asked for (else null); {@code words} and
     * {@code negativeWords} keep only whole words ({@link #isWord}) among the top {@value #WORD_CANDIDATES}, at most as
     * many as the plain lists.
     */
    public record Ranked(List<Scored> positive, List<Scored> negative, List<Scored> words,
                         List<Scored> negativeWords) {
    }

    /** How deep the whole-word lists look: the top this many tokens of each vector. */
    public static final int WORD_CANDIDATES = 256;

    private final LanguageModel model;
    private final String[] texts;          // (vocab) token text, decoded on first use
    private final byte[] words;            // (vocab) 0 unknown, 1 a whole word, 2 not
    private volatile float[] embedInvNorm; // (vocab) 1 / ||embedding row||, 0 for a zero row

    public TokenDecoder(LanguageModel model) {
        this.model = model;
        this.texts = new String[model.config().vocabSize()];
        this.words = new byte[model.config().vocabSize()];
    }

    /**
     * Whether a token is a whole word, as the paper's figures show decoded directions: it starts a word (its text
     * begins with a space, or, for SentencePiece tokenizers that drop a leading space when a token is decoded alone,
     * the same token twice decodes with a space between) and the rest is letters only ({@code " Golden"},
     * {@code " bridge"}; not {@code "ing"}, {@code " ,"} or {@code " 42"}).
     */
    public boolean isWord(long id) {
        int i = (int) id;
        byte w = words[i];
        if (w == 0) {
            String s = text(id);
            String body = null;
            if (s.length() > 1 && s.charAt(0) == ' ') {
                body = s.substring(1);
            } else if (!s.isEmpty() && !s.startsWith(" ")
                    && model.tokenizer().decode(new long[] {id, id}).equals(s + " " + s)) {
                body = s;
            }
            w = body != null && !body.isEmpty() && body.chars().allMatch(Character::isLetter) ? (byte) 1 : (byte) 2;
            words[i] = w; // benign race, as texts
        }
        return w == 1;
    }

    public LanguageModel model() {
        return model;
    }

    /** The text of one token, special tokens included (the tokenizer's own decode of the single id). */
    public String text(long id) {
        int i = (int) id;
        String s = texts[i];
        if (s == null) {
            s = model.tokenizer().decode(new long[] {id});
            texts[i] = s; // a benign race: every thread computes the same immutable string
        }
        return s;
    }

    /**
     * Top {@code top} tokens by logit of lm_head(vector) for every vector, computed in {@code dtype} (the precision
     * of the analysis, so that the model's own prediction is reproduced exactly).
     */
    public List<Ranked> byLogit(double[][] vectors, int top, boolean negative, DataType dtype) {
        if (vectors.length == 0) {
            return List.of();
        }
        Transformer tf = model.transformer(dtype);
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray x = matrix(m, vectors).toType(dtype, false); // (n, d)
            NDArray logits = tf.logits(x);                         // (n, vocab)
            return ranked(logits, top, negative);
        }
    }

    /**
     * Top {@code top} tokens by cosine similarity between each vector and the input embedding rows (float32).
     */
    public List<Ranked> byCosine(double[][] vectors, int top, boolean negative) {
        if (vectors.length == 0) {
            return List.of();
        }
        Transformer tf = model.transformer();
        float[] inv = embedInvNorm(tf);
        double[][] unit = new double[vectors.length][];
        for (int i = 0; i < vectors.length; i++) {
            double n = Math.sqrt(Svd.dot(vectors[i], vectors[i]));
            unit[i] = vectors[i].clone();
            for (int k = 0; k < unit[i].length; k++) {
                unit[i][k] = n == 0 ? 0 : unit[i][k] / n;
            }
        }
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            Weights w = tf.weights();
            NDArray x = matrix(m, unit).toType(w.dataType(), false);           // (n, d)
            NDArray invNorm = m.create(inv, new Shape(1, inv.length));         // (1, vocab)
            NDArray cos = w.byRows(w.embed(), m, Transformer.LM_HEAD_BLOCK_BYTES, // (n, vocab)
                    embed -> x.matMul(embed.transpose())).mul(invNorm);
            return ranked(cos, top, negative);
        }
    }

    private float[] embedInvNorm(Transformer tf) {
        float[] inv = embedInvNorm;
        if (inv == null) {
            try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                Weights w = tf.weights();
                float[] norms = w.byRows(w.embed(), m, Transformer.LM_HEAD_BLOCK_BYTES,
                                embed -> embed.square().sum(new int[] {1}).sqrt())
                        .toType(DataType.FLOAT32, false).toFloatArray();
                inv = new float[norms.length];
                for (int i = 0; i < norms.length; i++) {
                    inv[i] = norms[i] == 0 ? 0 : 1 / norms[i];
                }
            }
            embedInvNorm = inv;
        }
        return inv;
    }

    private static NDArray matrix(NDManager m, double[][] rows) {
        int d = rows[0].length;
        double[] flat = new double[rows.length * d];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, flat, i * d, d);
        }
        return m.create(flat, new Shape(rows.length, d));
    }

    /** Top (and, if asked, bottom, negated) entries of every row of {@code scores} (n, vocab). */
    private List<Ranked> ranked(NDArray scores, int top, boolean negative) {
        int n = (int) scores.getShape().get(0);
        int k = (int) Math.min(top, scores.getShape().get(1));
        int deep = (int) Math.min(Math.max(k, WORD_CANDIDATES), scores.getShape().get(1));
        List<List<Scored>> pos = pick(scores.topK(deep, 1, true, true), n, deep, 1);
        List<List<Scored>> neg = negative ? pick(scores.topK(deep, 1, false, true), n, deep, -1) : null;
        List<Ranked> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(new Ranked(List.copyOf(pos.get(i).subList(0, k)),
                    neg == null ? null : List.copyOf(neg.get(i).subList(0, k)), words(pos.get(i), k),
                    neg == null ? null : words(neg.get(i), k)));
        }
        return out;
    }

    private List<Scored> words(List<Scored> candidates, int k) {
        List<Scored> out = new ArrayList<>(k);
        for (Scored s : candidates) {
            if (out.size() == k) {
                break;
            }
            if (isWord(s.id())) {
                out.add(s);
            }
        }
        return List.copyOf(out);
    }

    private List<List<Scored>> pick(NDList topK, int n, int k, double sign) {
        double[] values = topK.get(0).toType(DataType.FLOAT64, false).toDoubleArray();
        long[] ids = topK.get(1).toType(DataType.INT64, false).toLongArray();
        List<List<Scored>> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            List<Scored> row = new ArrayList<>(k);
            for (int j = 0; j < k; j++) {
                long id = ids[i * k + j];
                row.add(new Scored(id, text(id), sign * values[i * k + j]));
            }
            out.add(row);
        }
        return out;
    }
}
