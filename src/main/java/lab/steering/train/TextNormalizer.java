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

    /**
     * Undoes UTF-8 text that was decoded as Latin-1 (possibly several times): when the string holds only characters
     * up to U+00FF, contains a UTF-8 lead byte followed by a continuation byte, and its Latin-1 bytes are valid
     * UTF-8, the decoded string replaces it. Repeats while that applies (at most 3 times). Ordinary Latin-1 text
     * such as "naïve" is left alone because it is not valid UTF-8 when encoded as Latin-1.
     */
    public static String repairMojibake(String s) {
        String t = s;
        for (int round = 0; round < 3; round++) {
            boolean suspicious = false;
            for (int i = 0; i < t.length(); i++) {
                char c = t.charAt(i);
                if (c > 0xFF) {
                    return t;
                }
                if (c >= 0xC2 && c <= 0xF4 && i + 1 < t.length() && t.charAt(i + 1) >= 0x80
                        && t.charAt(i + 1) <= 0xBF) {
                    suspicious = true;
                }
            }
            if (!suspicious) {
                return t;
            }
            try {
                t = java.nio.charset.StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                        .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                        .decode(java.nio.ByteBuffer.wrap(t.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1)))
                        .toString();
            } catch (java.nio.charset.CharacterCodingException e) {
                return t;
            }
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
