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

    /** Scientific notation with 3 significant digits: {x.sci}. */
    static String sci(double value) {
        return String.format(Locale.ROOT, "%.2e", value);
    }

    static String sci(Double value) {
        return value == null ? "" : sci(value.doubleValue());
    }

    static String fixed(double value, int digits) {
        return String.format(Locale.ROOT, "%." + digits + "f", value);
    }
}
