package lab.steering.web;

import io.quarkus.qute.TemplateExtension;
import java.util.Locale;

/** Number formatting for templates: {x.fixed(2)}. */
@TemplateExtension
public class TemplateExtensions {
    private TemplateExtensions() {
    }

    static String fixed(double value, int digits) {
        return String.format(Locale.ROOT, "%." + digits + "f", value);
    }
}
