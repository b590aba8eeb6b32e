package lab.steering.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes simple stories from a hand-written grammar and lexicon (tools/train/stories.grammar): the project's own
 * program-generated part of the training mix, as TinyStories was written by a larger model for small ones. The
 * stories are everyday narrative in plain words, so that a small model learns coherent sentences and clear topics;
 * they go to the training split only (validation stays natural text). See docs/corpus.md.
 *
 * <p>Grammar file: {@code [name]} starts a rule; every following non-empty line is one alternative (chosen
 * uniformly; a line {@code 3* text} counts three times). {@code #} starts a comment line. In an alternative:
 * <ul>
 *   <li>{@code {rule}} expands a rule; {@code <v>} inside the braces is replaced by variable v first
 *       ({@code {<topic>_scene}} expands {@code dog_scene} when topic is dog);</li>
 *   <li>{@code {v:=rule}} expands rule into variable v and writes nothing; {@code {=v}} writes v;
 *       {@code {=v.2}} writes its field 2 (fields are separated by {@code /}: a character is
 *       {@code name/he/his/him});</li>
 *   <li>{@code {rule~k}} pairs choices: the first such expansion in a story picks a line of its rule at random and
 *       every later {@code ~k} takes the line at the same index of its own rule (a question and its answer);</li>
 *   <li>a leading {@code ^} capitalises what the braces write: {@code {^=hero.1}}.</li>
 * </ul>
 * A story avoids repeating a line of a rule: a used line is drawn again up to 8 times (so a rule of n lines
 * repeats one only with probability about ((k - 1) / n)^9 at its k-th use).
 * Whitespace runs are collapsed and a space before {@code , . ! ?} is dropped; {@code ||} starts a new paragraph.
 */
public final class StoryWriter {

    private final Map<String, List<String>> rules;

    public StoryWriter(Map<String, List<String>> rules) {
        this.rules = rules;
        if (!rules.containsKey("story")) {
            throw new IllegalArgumentException("the grammar has no [story] rule");
        }
    }

    /** Parses a grammar file (see the class comment). */
    public static StoryWriter load(Path grammar) {
        try {
            return parse(Files.readString(grammar, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static StoryWriter parse(String text) {
        Map<String, List<String>> rules = new LinkedHashMap<>();
        List<String> current = null;
        int lineNo = 0;
        for (String raw : text.split("\n", -1)) {
            lineNo++;
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            if (line.startsWith("[") && line.endsWith("]")) {
                String name = line.substring(1, line.length() - 1);
                current = rules.computeIfAbsent(name, k -> new ArrayList<>());
                continue;
            }
            if (current == null) {
                throw new IllegalArgumentException("line " + lineNo + ": text before the first [rule]");
            }
            int weight = 1;
            int star = line.indexOf("* ");
            if (star > 0 && line.substring(0, star).chars().allMatch(Character::isDigit)) {
                weight = Integer.parseInt(line.substring(0, star));
                line = line.substring(star + 2);
            }
            for (int i = 0; i < weight; i++) {
                current.add(line);
            }
        }
        return new StoryWriter(rules);
    }

    /** Story number {@code index} of the stream seeded by {@code seed}: the same pair always gives the same text. */
    public List<String> story(long seed, long index) {
        SplittableRandom random = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + index);
        Map<String, String> vars = new HashMap<>();
        String text = expand("story", random, vars, 0);
        List<String> paragraphs = new ArrayList<>();
        for (String p : text.split("\\|\\|")) {
            String clean = tidy(p);
            if (!clean.isEmpty()) {
                paragraphs.add(clean);
            }
        }
        return paragraphs;
    }

    private String expand(String rule, SplittableRandom random, Map<String, String> vars, int depth) {
        String pair = null;
        int tilde = rule.indexOf('~');
        if (tilde > 0) {
            pair = rule.substring(tilde + 1);
            rule = rule.substring(0, tilde);
        }
        List<String> alternatives = rules.get(rule);
        if (alternatives == null || alternatives.isEmpty()) {
            throw new IllegalArgumentException("unknown or empty rule [" + rule + "]");
        }
        if (depth > 40) {
            throw new IllegalStateException("rules nested more than 40 deep at [" + rule + "]");
        }
        int pick;
        if (pair != null && vars.containsKey("~" + pair)) {
            pick = Integer.parseInt(vars.get("~" + pair)) % alternatives.size();
        } else {
            // a story does not use the same line twice when another is left (up to 8 draws)
            pick = random.nextInt(alternatives.size());
            for (int tries = 0; tries < 8 && vars.containsKey("@" + rule + "#" + alternatives.get(pick)); tries++) {
                pick = random.nextInt(alternatives.size());
            }
            if (pair != null) {
                vars.put("~" + pair, Integer.toString(pick));
            }
        }
        vars.put("@" + rule + "#" + alternatives.get(pick), "");
        return fill(alternatives.get(pick), random, vars, depth);
    }

    private String fill(String template, SplittableRandom random, Map<String, String> vars, int depth) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < template.length()) {
            char c = template.charAt(i);
            if (c != '{') {
                out.append(c);
                i++;
                continue;
            }
            int end = template.indexOf('}', i);
            if (end < 0) {
                throw new IllegalArgumentException("unclosed { in: " + template);
            }
            String body = template.substring(i + 1, end);
            i = end + 1;
            boolean capital = body.startsWith("^");
            if (capital) {
                body = body.substring(1);
            }
            body = substitute(body, vars);
            String value;
            int bind = body.indexOf(":=");
            if (bind > 0) {
                vars.put(body.substring(0, bind), expand(body.substring(bind + 2), random, vars, depth + 1).strip());
                value = "";
            } else if (body.startsWith("=")) {
                String name = body.substring(1);
                int field = 0;
                int dot = name.indexOf('.');
                if (dot > 0) {
                    field = Integer.parseInt(name.substring(dot + 1));
                    name = name.substring(0, dot);
                }
                String v = vars.get(name);
                if (v == null) {
                    throw new IllegalArgumentException("variable " + name + " is not set in: " + template);
                }
                String[] fields = v.split("/");
                value = fields[Math.min(field, fields.length - 1)];
            } else {
                value = expand(body, random, vars, depth + 1);
            }
            out.append(capital ? capitalise(value) : value);
        }
        return out.toString();
    }

    private static String substitute(String body, Map<String, String> vars) {
        int open = body.indexOf('<');
        while (open >= 0) {
            int close = body.indexOf('>', open);
            String name = body.substring(open + 1, close);
            String v = vars.get(name);
            if (v == null) {
                throw new IllegalArgumentException("variable " + name + " is not set in {" + body + "}");
            }
            body = body.substring(0, open) + v.split("/")[0] + body.substring(close + 1);
            open = body.indexOf('<');
        }
        return body;
    }

    static String capitalise(String s) {
        String t = s.stripLeading();
        if (t.isEmpty()) {
            return s;
        }
        return s.substring(0, s.length() - t.length()) + Character.toUpperCase(t.charAt(0)) + t.substring(1);
    }

    /**
     * Collapses spaces, drops a space before punctuation, and capitalises the first letter of the paragraph and of
     * each sentence that follows {@code . ! ?} and a space (not one that follows a closing quote: {@code "Hi!" said
     * Tom}).
     */
    static String tidy(String p) {
        String s = p.replaceAll("\\s+", " ").strip().replaceAll(" ([,.!?;:])", "$1")
                .replaceAll("\\.\" (said|asked|told|replied)", ",\" $1");
        StringBuilder out = new StringBuilder(s.length());
        boolean start = true;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isLetter(c)) {
                out.append(start ? Character.toUpperCase(c) : c);
                start = false;
            } else {
                out.append(c);
                if (c == '.' || c == '!' || c == '?') {
                    start = i + 1 < s.length() && s.charAt(i + 1) == ' ';
                } else if (Character.isDigit(c)) {
                    start = false;
                }
            }
        }
        return out.toString();
    }

    /**
     * The synthetic source: {@code count} stories, one document each (id {@code stories/N}).
     */
    public static List<Doc> documents(Path grammar, long seed, int count) {
        StoryWriter writer = load(grammar);
        List<Doc> docs = new ArrayList<>(count);
        for (int n = 0; n < count; n++) {
            docs.add(new Doc("stories", "grammar", "stories/" + n, writer.story(seed, n)));
        }
        return docs;
    }

    /** Prints a few stories: {@code java lab.steering.train.StoryWriter --grammar F [--count 5] [--seed S]}. */
    public static void main(String[] args) {
        Map<String, String> a = Args.parse(args);
        StoryWriter w = load(Path.of(a.getOrDefault("grammar", "tools/train/stories.grammar")));
        long seed = Long.parseLong(a.getOrDefault("seed", "1"));
        int count = Integer.parseInt(a.getOrDefault("count", "5"));
        for (int n = 0; n < count; n++) {
            System.out.println(String.join("\n", w.story(seed, n)));
            System.out.println();
        }
    }
}
