package lab.steering.web;

import lab.steering.service.Refusal;
import jakarta.ws.rs.core.HttpHeaders;
import java.util.function.Function;

/** Small helpers shared by the page resources: form-field parsing with the API's error codes, htmx detection. */
final class Forms {
    private Forms() {
    }

    /** True for a request htmx made (it sends HX-Request): answer with the fragment, not the page. */
    /** A file to download: its bytes, its name, and its SHA-256 as X-Content-SHA256 when known. */
    static jakarta.ws.rs.core.Response download(byte[] data, String filename, String sha256) {
        jakarta.ws.rs.core.Response.ResponseBuilder r = jakarta.ws.rs.core.Response.ok(data,
                jakarta.ws.rs.core.MediaType.APPLICATION_OCTET_STREAM_TYPE)
                .header("Content-Disposition", "attachment; filename=\"" + filename + "\"");
        return (sha256 == null ? r : r.header("X-Content-SHA256", sha256)).build();
    }

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

    /**
     * A query string ("?a=1&b=x") of the non-blank values, in the order given (pairs of name, value), URL-encoded:
     * what a page pushes to the address bar so that the form as submitted can be bookmarked and shared.
     */
    static String query(String... namesAndValues) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i + 1 < namesAndValues.length; i += 2) {
            String v = namesAndValues[i + 1];
            if (v == null || v.isBlank()) {
                continue;
            }
            b.append(b.length() == 0 ? '?' : '&').append(namesAndValues[i]).append('=')
                    .append(java.net.URLEncoder.encode(v, java.nio.charset.StandardCharsets.UTF_8));
        }
        return b.toString();
    }

    /** {@code value} when not null, else {@code dflt}. */
    static String or(String value, String dflt) {
        return value != null ? value : dflt;
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
            throw Refusal.invalidField(field, "'" + value + "' is not a number");
        }
    }

    /** An id from a path: a whole number, else 400 invalid_id ({@code what}: "an operator", "a run"). */
    public static long id(String value, String what) {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw Refusal.invalidField("id", what + " id is a whole number, got '" + value + "'");
        }
    }
}
