package lab.steering.jacobian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import lab.steering.SharedModels;
import lab.steering.model.LanguageModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link TokenDecoder} against plain-Java scoring of the same weights (double arithmetic over the float32 arrays).
 * Ids must agree exactly (random vectors: no near-ties at the cut-off); scores within 1e-4 relative, the float32
 * matmul's rounding over d = 64 terms being ~1e-6.
 */
class TokenDecoderTest {

    static LanguageModel model;
    static TokenDecoder decoder;
    static float[] embed;   // (vocab, d)
    static float[] lmHead;  // (vocab, d)
    static int d;
    static int vocab;

    @BeforeAll
    static void load() {
        model = LanguageModel.load(SharedModels.require(SharedModels.STORIES_TEXT), Device.cpu());
        decoder = new TokenDecoder(model);
        embed = model.transformer().weights().embed().toFloatArray();
        lmHead = model.transformer().weights().lmHead().toFloatArray();
        d = model.config().hiddenSize();
        vocab = model.config().vocabSize();
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static double[][] randomVectors(int n, long seed) {
        Random r = new Random(seed);
        double[][] out = new double[n][d];
        for (double[] v : out) {
            for (int k = 0; k < d; k++) {
                v[k] = r.nextGaussian();
            }
        }
        return out;
    }

    static double[] scores(float[] rows, double[] v, boolean cosine) {
        double[] s = new double[vocab];
        double nv = Math.sqrt(Svd.dot(v, v));
        for (int j = 0; j < vocab; j++) {
            double dot = 0;
            double ne = 0;
            for (int k = 0; k < d; k++) {
                dot += rows[j * d + k] * v[k];
                ne += (double) rows[j * d + k] * rows[j * d + k];
            }
            s[j] = cosine ? dot / (nv * Math.sqrt(ne)) : dot;
        }
        return s;
    }

    static int[] top(double[] s, int k) {
        return IntStream.range(0, s.length).boxed().sorted(Comparator.comparingDouble((Integer j) -> -s[j]))
                .limit(k).mapToInt(Integer::intValue).toArray();
    }

    static void assertMatches(double[] expected, List<TokenDecoder.Scored> got, String what) {
        int[] want = top(expected, got.size());
        for (int j = 0; j < want.length; j++) {
            assertEquals(want[j], got.get(j).id(), what + " rank " + j);
            assertEquals(expected[want[j]], got.get(j).score(), 1e-4 * Math.abs(expected[want[0]]), what);
            assertEquals(model.tokenizer().decode(new long[] {want[j]}), got.get(j).token());
        }
    }

    @Test
    void logitDecodingMatchesLmHeadInPlainJavaForEveryVectorOfTheBatch() {
        double[][] v = randomVectors(5, 1);
        List<TokenDecoder.Ranked> r = decoder.byLogit(v, 8, false, DataType.FLOAT32);
        assertEquals(5, r.size());
        for (int i = 0; i < v.length; i++) {
            assertMatches(scores(lmHead, v[i], false), r.get(i).positive(), "vector " + i);
            assertNull(r.get(i).negative());
        }
        List<TokenDecoder.Ranked> r64 = decoder.byLogit(v, 8, false, DataType.FLOAT64);
        assertMatches(scores(lmHead, v[0], false), r64.get(0).positive(), "float64");
    }

    @Test
    void cosineDecodingMatchesThePlainJavaCosineAndFindsAnEmbeddingRowItself() {
        double[][] v = randomVectors(3, 2);
        List<TokenDecoder.Ranked> r = decoder.byCosine(v, 8, false);
        for (int i = 0; i < v.length; i++) {
            assertMatches(scores(embed, v[i], true), r.get(i).positive(), "vector " + i);
        }
        int id = 300;
        double[] row = new double[d];
        for (int k = 0; k < d; k++) {
            row[k] = 3 * embed[id * d + k]; // scale does not matter for a cosine
        }
        TokenDecoder.Scored best = decoder.byCosine(new double[][] {row}, 1, false).get(0).positive().get(0);
        assertEquals(id, best.id());
        assertEquals(1.0, best.score(), 1e-5);
    }

    @Test
    void theOppositeSignIsTheTopOfTheNegatedVector() {
        double[][] v = randomVectors(2, 3);
        double[][] minus = new double[2][d];
        for (int i = 0; i < 2; i++) {
            for (int k = 0; k < d; k++) {
                minus[i][k] = -v[i][k];
            }
        }
        List<TokenDecoder.Ranked> both = decoder.byLogit(v, 8, true, DataType.FLOAT64);
        List<TokenDecoder.Ranked> neg = decoder.byLogit(minus, 8, false, DataType.FLOAT64);
        List<TokenDecoder.Ranked> bothCos = decoder.byCosine(v, 8, true);
        List<TokenDecoder.Ranked> negCos = decoder.byCosine(minus, 8, false);
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 8; j++) {
                assertEquals(neg.get(i).positive().get(j).id(), both.get(i).negative().get(j).id());
                assertEquals(neg.get(i).positive().get(j).score(), both.get(i).negative().get(j).score(), 1e-12);
                assertEquals(negCos.get(i).positive().get(j).id(), bothCos.get(i).negative().get(j).id());
                assertEquals(negCos.get(i).positive().get(j).score(), bothCos.get(i).negative().get(j).score(), 1e-5);
            }
        }
    }

    @Test
    void wholeWordsStartAWordAndAreLettersOnly() {
        // stories260K-text is a SentencePiece vocabulary: "Once" is the piece "\u2581Once", which decodes alone
        // without its space; "," and the second half of a split word do not start a word
        long[] ids = model.tokenizer().encode("Once upon a time, there was a dog named Spot");
        String[] pieces = model.tokenizer().pieces(ids);
        for (int i = 1; i < ids.length; i++) {
            String p = pieces[i];
            boolean expected = p.startsWith(" ") && p.length() > 1 && p.substring(1).chars().allMatch(Character::isLetter)
                    || i == 1 && p.chars().allMatch(Character::isLetter);
            assertEquals(expected, decoder.isWord(ids[i]), "token " + i + " [" + p + "]");
        }
        assertEquals(true, decoder.isWord(ids[1]), "the first word, without a space before it");
    }

    @Test
    void wordListsAreTheWholeWordsOfTheRankingInOrder() {
        double[][] v = randomVectors(4, 11);
        List<TokenDecoder.Ranked> ranked = decoder.byLogit(v, 8, true, DataType.FLOAT32);
        for (int r = 0; r < v.length; r++) {
            double[] s = scores(lmHead, v[r], false);
            List<Integer> order = IntStream.range(0, vocab).boxed()
                    .sorted(Comparator.comparingDouble((Integer i) -> -s[i])).toList();
            List<Long> expected = order.stream().limit(TokenDecoder.WORD_CANDIDATES).filter(decoder::isWord).limit(8)
                    .map(Integer::longValue).toList();
            assertEquals(expected, ranked.get(r).words().stream().map(TokenDecoder.Scored::id).toList());
            assertEquals(8, ranked.get(r).positive().size(), "every token is kept beside the words");
            for (TokenDecoder.Scored w : ranked.get(r).negativeWords()) {
                assertEquals(true, decoder.isWord(w.id()));
            }
        }
    }
}
