package lab.steering.service;

import lab.steering.model.LanguageModel;

/**
 * Text from users on its way to a tokenizer: the checks every entry point shares (what a database column can hold is
 * {@link lab.steering.store.Columns}).
 */
public final class Texts {

    /**
     * Characters per token of context past which a prompt is refused before it is tokenized: no tokenizer has tokens
     * this long, so such a prompt cannot fit, and tokenizing megabytes only to say so takes seconds.
     */
    static final int MAX_CHARS_PER_TOKEN = 256;

    private Texts() {
    }

    /** Refuses (400 invalid_{field}) text with the NUL character, which PostgreSQL's text cannot hold. */
    public static void noNul(String field, String text) {
        if (text != null && text.indexOf('\0') >= 0) {
            throw Refusal.invalidField(field, "must not contain the NUL character (U+0000)");
        }
    }

    /**
     * The ids of a prompt: refused (400 invalid_{field}) when it holds a NUL, when it is longer than any
     * tokenization could fit in the model's context (before tokenizing) or when it encodes to no tokens. The caller
     * checks the ids against the context its work needs.
     */
    public static long[] encode(LanguageModel model, String text, String field) {
        long[] ids = tokens(model, text, field);
        if (ids.length == 0) {
            throw Refusal.invalidField(field, "encodes to no tokens");
        }
        return ids;
    }

    /**
     * As {@link #encode}, and the ids leave {@code room} positions of the model's context free (0: an analysis of
     * the prompt; 1: a continuation, at least one new token), else 400 invalid_{field}: the one context check.
     */
    public static long[] encode(LanguageModel model, String text, String field, int room) {
        long[] ids = encode(model, text, field);
        int context = model.config().maxPositions();
        if (ids.length + room > context) {
            throw Refusal.invalidField(field, "is " + ids.length + " tokens; model '" + model.id()
                    + "' has a context of " + context + " tokens");
        }
        return ids;
    }

    /** As {@link #encode}, but text that encodes to no tokens gives no ids instead of a refusal. */
    public static long[] tokens(LanguageModel model, String text, String field) {
        if (text == null) {
            throw Refusal.invalidField(field, "is required");
        }
        noNul(field, text);
        int context = model.config().maxPositions();
        long maxChars = (long) context * MAX_CHARS_PER_TOKEN;
        if (text.length() > maxChars) {
            throw Refusal.invalidField(field, "is " + text.length() + " characters; model '"
                    + model.id() + "' has a context of " + context + " tokens (prompts over " + maxChars
                    + " characters are refused before tokenizing)");
        }
        return model.tokenizer().encode(text);
    }
}
