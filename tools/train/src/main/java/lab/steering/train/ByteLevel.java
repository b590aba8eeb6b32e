package lab.steering.train;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * GPT-2 style byte-level pieces, as Hugging Face's {@code ByteLevel} pre-tokenizer and decoder define them.
 *
 * <p>Every byte is shown as one printable character: the bytes {@code '!'..'~'}, {@code '¡'..'¬'} and
 * {@code '®'..'ÿ'} stand for themselves, the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) are mapped in
 * increasing order to U+0100, U+0101, ... (so space is {@code Ġ} U+0120 and newline {@code Ċ} U+010A).
 *
 * <p>Text is first split with the GPT-2 regex (the one HF's ByteLevel uses with {@code use_regex: true}):
 * contractions {@code 's 't 're 've 'm 'll 'd}, then letters, numbers, or other symbols, each with at most one
 * leading space, then whitespace that is not followed by a non-space (so the last space before a word stays
 * with the word), then any remaining whitespace. Java needs {@link Pattern#UNICODE_CHARACTER_CLASS} so that
 * {@code \s} means Unicode white space as in HF's regex engine.
 */
public final class ByteLevel {

    public static final String REGEX =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    public static final Pattern PRETOKENIZER = Pattern.compile(REGEX, Pattern.UNICODE_CHARACTER_CLASS);

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        Arrays.fill(CHAR_TO_BYTE, -1);
        int next = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + next++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteLevel() {
    }

    /** The character that stands for byte {@code b} (0..255). */
    public static char byteChar(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** Splits text into pre-tokens (substrings of the text that together give it back). */
    public static List<String> pretokenize(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = PRETOKENIZER.matcher(text);
        int end = 0;
        while (m.find()) {
            if (m.start() != end) {
                throw new IllegalStateException("pre-tokenizer skipped text at " + end);
            }
            out.add(m.group());
            end = m.end();
        }
        if (end != text.length()) {
            throw new IllegalStateException("pre-tokenizer skipped the end of the text");
        }
        return out;
    }

    /** The UTF-8 bytes of a piece of text, each shown as its byte character. */
    public static String toByteChars(String piece) {
        byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
        char[] chars = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            chars[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        }
        return new String(chars);
    }

    /** The inverse of {@link #toByteChars}: byte characters back to text (invalid UTF-8 becomes U+FFFD). */
    public static String fromByteChars(CharSequence s) {
        byte[] bytes = new byte[s.length()];
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) {
                throw new IllegalArgumentException("not a byte character: U+" + Integer.toHexString(c));
            }
            bytes[i] = (byte) b;
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
