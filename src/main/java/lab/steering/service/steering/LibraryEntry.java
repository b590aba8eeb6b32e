package lab.steering.service.steering;

import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.service.Texts;

/**
 * What every entry of the library (an operator, a vector) carries besides its tensors, and its limits: a name of at
 * most {@value #MAX_NAME} characters, a description of at most {@value #MAX_DESCRIPTION}, at most {@value #MAX_TAGS}
 * tags of 1..{@value #MAX_TAG} characters; none with the NUL character. The services check them when an entry is
 * built, imported or edited.
 */
public final class LibraryEntry {

    public static final int MAX_NAME = 200;
    public static final int MAX_DESCRIPTION = 4000;
    public static final int MAX_TAGS = 20;
    public static final int MAX_TAG = 50;

    private LibraryEntry() {
    }

    /**
     * Refuses (400 invalid_name, invalid_description, invalid_tags) a field out of its limits; null fields are
     * absent (a name only where {@code nameRequired} is false: an edit or an import keeps or derives it).
     */
    public static void check(String name, boolean nameRequired, String description, List<String> tags) {
        if (name != null || nameRequired) {
            if (name == null || name.isBlank()) {
                throw Refusal.invalidField("name", "must not be empty");
            }
            if (name.length() > MAX_NAME) {
                throw Refusal.invalidField("name", "must be at most " + MAX_NAME + " characters");
            }
            Texts.noNul("name", name);
        }
        if (description != null && description.length() > MAX_DESCRIPTION) {
            throw Refusal.invalidField("description", "must be at most " + MAX_DESCRIPTION + " characters");
        }
        Texts.noNul("description", description);
        if (tags == null) {
            return;
        }
        if (tags.size() > MAX_TAGS) {
            throw Refusal.invalidField("tags", "at most " + MAX_TAGS + " tags, got " + tags.size());
        }
        for (String t : tags) {
            if (t == null || t.isBlank() || t.length() > MAX_TAG) {
                throw Refusal.invalidField("tags", "each tag must be 1.." + MAX_TAG + " characters, got '" + t + "'");
            }
            Texts.noNul("tags", t);
        }
    }
}
