package lab.steering.web;

import jakarta.ws.rs.core.HttpHeaders;
import java.util.function.Function;

/** Small helpers shared by the page resources: form-field parsing with the API's error codes, htmx detection. */
final class Forms {
    private Forms() {
    }

    /** True for a request htmx made (it sends HX-Request): answer with the fragment, not the page. */
    static boolean htmx(HttpHeaders headers) {
        return headers != null && headers.getHeaderString("HX-Request") != null;
    }

    static Integer integer(String value, String field) {
        return parse(value, field, Integer::valueOf);
    }

    static Double number(String value, String field) {
        return parse(value, field, Double::valueOf);
    }

    static Long longValue(String value, String field) {
        return parse(value, field, Long::valueOf);
    }

    static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    static <T> T parse(String value, String field, Function<String, T> f) {
        if (value == null || value.isBlank()) {
            return null;
        }
        try {
            return f.apply(value.trim());
        } catch (NumberFormatException e) {
            throw ApiException.badField(field, "'" + value + "' is not a number");
        }
    }
}
