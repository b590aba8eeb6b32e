package lab.steering.web;

import io.quarkus.qute.TemplateExtension;
import java.util.Locale;

/** Number formatting for templates: {x.fixed(2)}. */
@TemplateExtension
public class TemplateExtensions {
    private TemplateExtensions() {
    }

    /** Tags as the edit field shows them: "a, b". */
    static String commaJoined(java.util.List<String> list) {
        return list == null ? "" : String.join(", ", list);
    }

    static String fixed(double value, int digits) {
        return String.format(Locale.ROOT, "%." + digits + "f", value);
    }
}
