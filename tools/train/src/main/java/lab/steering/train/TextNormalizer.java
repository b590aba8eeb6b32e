package lab.steering.train;

import java.text.Normalizer;

/**
 * Character-level cleaning shared by all sources.
 *
 * <ul>
 *   <li>Mojibake repair: text that is UTF-8 decoded as Latin-1 (once or more, e.g. {@code donÃ¢ÂÂt}, found in a
 *       few fortunes) is decoded again, see
 *       {@link #repairMojibake(String)}.</li>
 *   <li>Unicode NFC.</li>
 *   <li>Typographic punctuation to ASCII, so that all sources spell quotes and dashes alike: curly single quotes
 *       to {@code '}, curly double quotes to {@code "}, em dash to {@code --}, en dash to {@code -} between digits and
 *       {@code --} elsewhere, ellipsis to {@code ...}.</li>
 *   <li>Backspace overstrikes (old fortune files, e.g. {@code ____^H^H^H^HBODY}) are applied: each backspace deletes
 *       the character before it.</li>
 *   <li>Other control characters, zero-width characters and the byte order mark are removed; every kind of
 *       whitespace inside a line (tab, no-break space, ...) becomes one ASCII space; runs of spaces collapse.</li>
 * </ul>
 * A normalised line has no leading or trailing space and no newline.
 */
public final class TextNormalizer {

    private TextNormalizer() {
    }

    /** Normalises one line (a paragraph or verse); newlines inside it are treated as spaces. */
    public static String line(String s) {
        String t = Normalizer.normalize(applyBackspaces(repairMojibake(s)), Normalizer.Form.NFC);
        StringBuilder b = new StringBuilder(t.length());
        int n = t.length();
        for (int i = 0; i < n; i++) {
            char c = t.charAt(i);
            switch (c) {
                case '\u2018', '\u2019', '\u201A', '\u201B', '\u2032' -> b.append('\'');
                case '\u201C', '\u201D', '\u201E', '\u201F', '\u2033' -> b.append('"');
                case '\u2014', '\u2015' -> b.append("--");
                case '\u2013' -> {
                    boolean digits = b.length() > 0 && Character.isDigit(b.charAt(b.length() - 1))
                            && i + 1 < n && Character.isDigit(t.charAt(i + 1));
                    b.append(digits ? "-" : "--");
                }
                case '\u2026' -> b.append("...");
                case '\uFEFF', '\u200B', '\u200C', '\u200D', '\u2060', '\u00AD' -> {
                    // zero-width characters, BOM and soft hyphen: dropped
                }
                default -> {
                    if (Character.isWhitespace(c) || Character.isSpaceChar(c)) {
                        b.append(' ');
                    } else if (Character.getType(c) == Character.CONTROL) {
                        // other control characters (bell, escape, ...) are dropped
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return collapseSpaces(b);
    }

    /** A UTF-8 byte sequence read as Latin-1: lead byte and continuation bytes as characters U+0080..U+00FF. */
    private static final java.util.regex.Pattern MOJIBAKE = java.util.regex.Pattern.compile(
            "[\u00c2-\u00df][\u0080-\u00bf]|[\u00e0-\u00ef][\u0080-\u00bf]{2}|[\u00f0-\u00f4][\u0080-\u00bf]{3}");

    /**
     * Undoes UTF-8 text that was decoded as Latin-1 (possibly several times): every run of characters that are the
     * Latin-1 reading of one valid UTF-8 sequence is replaced by the character it encodes, repeated while that
     * applies (at most 3 times). Ordinary accented text such as "naïve" or "café" is left alone because an accented
     * letter is not followed by characters U+0080..U+00BF.
     */
    public static String repairMojibake(String s) {
        String t = s;
        for (int round = 0; round < 3; round++) {
            java.util.regex.Matcher m = MOJIBAKE.matcher(t);
            if (!m.find()) {
                return t;
            }
            StringBuilder b = new StringBuilder(t.length());
            int last = 0;
            do {
                b.append(t, last, m.start());
                String decoded = new String(m.group().getBytes(java.nio.charset.StandardCharsets.ISO_8859_1),
                        java.nio.charset.StandardCharsets.UTF_8);
                b.append(decoded.indexOf('\uFFFD') >= 0 ? m.group() : decoded);
                last = m.end();
            } while (m.find());
            b.append(t, last, t.length());
            if (b.toString().equals(t)) {
                return t;
            }
            t = b.toString();
        }
        return t;
    }

    private static String applyBackspaces(String s) {
        if (s.indexOf('\b') < 0) {
            return s;
        }
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\b') {
                if (b.length() > 0) {
                    b.setLength(b.length() - 1);
                }
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    private static String collapseSpaces(CharSequence s) {
        StringBuilder b = new StringBuilder(s.length());
        boolean space = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == ' ') {
                space = b.length() > 0;
            } else {
                if (space) {
                    b.append(' ');
                    space = false;
                }
                b.append(c);
            }
        }
        return b.toString();
    }

    /**
     * A key for duplicate detection: lower case letters and digits only, so that differences in punctuation,
     * spacing and case do not hide a duplicate.
     */
    public static String dedupKey(String s) {
        StringBuilder b = new StringBuilder(s.length());
        s.codePoints().filter(Character::isLetterOrDigit).map(Character::toLowerCase).forEach(b::appendCodePoint);
        return b.toString();
    }
}
