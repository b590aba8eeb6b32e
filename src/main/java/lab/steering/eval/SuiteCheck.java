package lab.steering.eval;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import lab.steering.steer.EvalSuite;

/**
 * What a suite must be to run: a name, 1 to {@value #MAX_CONCEPTS} concepts with distinct names, each a concept
 * prompt and 1 to {@value #MAX_WORDS} concept words (runs of letters: the scores compare words that way), and 2 to
 * {@value #MAX_PROMPTS} prompts (the benchmark holds some out to choose strengths and reports on the rest). Texts are
 * non-blank, at most {@value #MAX_TEXT} characters, without NUL. The first problem found is thrown as an
 * {@link InvalidSetting} naming its field.
 */
public final class SuiteCheck {

    public static final int MAX_CONCEPTS = 200;
    public static final int MAX_PROMPTS = 200;
    public static final int MAX_WORDS = 100;
    public static final int MAX_TEXT = 1000;

    private SuiteCheck() {
    }

    public static EvalSuite check(EvalSuite s) {
        if (s == null) {
            throw new InvalidSetting("suite", "missing");
        }
        text(s.name(), "name", true);
        if (s.name().length() > 100) {
            throw new InvalidSetting("name", "at most 100 characters");
        }
        if (s.description() != null) {
            text(s.description(), "description", false);
        }
        List<EvalSuite.Concept> concepts = s.concepts();
        if (concepts == null || concepts.isEmpty() || concepts.size() > MAX_CONCEPTS) {
            throw new InvalidSetting("concepts", "a suite has 1 to " + MAX_CONCEPTS + " concepts, got "
                    + (concepts == null ? 0 : concepts.size()));
        }
        Set<String> names = new HashSet<>();
        for (int i = 0; i < concepts.size(); i++) {
            EvalSuite.Concept c = concepts.get(i);
            String at = "concepts[" + i + "]";
            if (c == null) {
                throw new InvalidSetting(at, "missing");
            }
            text(c.name(), at + ".name", true);
            if (!names.add(c.name())) {
                throw new InvalidSetting(at + ".name", "concept '" + c.name() + "' is named twice");
            }
            text(c.conceptPrompt(), at + ".conceptPrompt", true);
            if (c.contrastPrompt() != null) {
                text(c.contrastPrompt(), at + ".contrastPrompt", false);
            }
            if (c.words() == null || c.words().isEmpty() || c.words().size() > MAX_WORDS) {
                throw new InvalidSetting(at + ".words", "1 to " + MAX_WORDS + " concept words, got "
                        + (c.words() == null ? 0 : c.words().size()));
            }
            for (int j = 0; j < c.words().size(); j++) {
                String w = c.words().get(j);
                if (w == null || !w.matches("\\p{L}+")) {
                    throw new InvalidSetting(at + ".words[" + j + "]", "a concept word is one run of letters, got "
                            + (w == null ? "null" : "'" + w + "'"));
                }
            }
        }
        List<String> prompts = s.prompts();
        if (prompts == null || prompts.size() < 2 || prompts.size() > MAX_PROMPTS) {
            throw new InvalidSetting("prompts", "a suite has 2 to " + MAX_PROMPTS + " prompts (some choose the"
                    + " strengths, the rest are reported), got " + (prompts == null ? 0 : prompts.size()));
        }
        for (int i = 0; i < prompts.size(); i++) {
            text(prompts.get(i), "prompts[" + i + "]", true);
        }
        return s;
    }

    private static void text(String t, String field, boolean required) {
        if (t == null || (required && t.isBlank())) {
            throw new InvalidSetting(field, "must be a non-empty text");
        }
        if (t.length() > MAX_TEXT) {
            throw new InvalidSetting(field, "at most " + MAX_TEXT + " characters, got " + t.length());
        }
        if (t.indexOf('\0') >= 0) {
            throw new InvalidSetting(field, "contains a NUL character");
        }
    }
}
