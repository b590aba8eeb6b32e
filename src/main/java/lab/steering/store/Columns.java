package lab.steering.store;

import java.util.List;
import java.util.regex.Pattern;

/** Values as PostgreSQL columns hold them: text and jsonb without NUL, tag arrays, ILIKE patterns. */
public final class Columns {

    private Columns() {
    }

    /** A JSON string escape of NUL preceded by an even number of backslashes (so not itself an escaped backslash). */
    private static final Pattern NUL_ESCAPE =
            Pattern.compile("(?<!\\\\)((?:\\\\\\\\)*)\\\\u0000");

    /**
     * Text as a PostgreSQL text column can hold it: the NUL character, which a model can generate (a byte token)
     * though no request may contain it, becomes U+FFFD.
     */
    public static String storable(String text) {
        return text == null || text.indexOf('\0') < 0 ? text : text.replace('\0', '\uFFFD');
    }

    /** JSON text as a jsonb column can hold it (json keeps NUL's escape, jsonb refuses it): NUL becomes U+FFFD. */
    public static String storableJson(String json) {
        return json == null || !json.contains("\\u0000") ? json
                : NUL_ESCAPE.matcher(json).replaceAll("$1\\\\ufffd");
    }

    /** An ILIKE pattern matching {@code q} anywhere, its own %, _ and backslash taken literally. */
    public static String likePattern(String q) {
        return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
    }

    /** Tags as stored: each once, in the order given (none for null). */
    public static String[] tags(List<String> tags) {
        return tags == null ? new String[0] : tags.stream().distinct().toArray(String[]::new);
    }
}
