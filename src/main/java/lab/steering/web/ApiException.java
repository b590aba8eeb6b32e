package lab.steering.web;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A request the API refuses: HTTP status, a stable error code and a message naming the problem; optionally extra body
 * fields and response headers.
 */
public class ApiException extends RuntimeException {

    private final int status;
    private final String code;
    private final Map<String, Object> details = new LinkedHashMap<>();
    private final Map<String, String> headers = new LinkedHashMap<>();

    public ApiException(int status, String code, String message) {
        super(message);
        this.status = status;
        this.code = code;
    }

    public static ApiException badField(String field, String problem) {
        return new ApiException(400, "invalid_" + field, field + ": " + problem);
    }

    /** {@code work}'s result; a service's {@link Refusal} comes out as an ApiException with its status and code. */
    static <T> T refusing(java.util.function.Supplier<T> work) {
        try {
            return work.get();
        } catch (lab.steering.service.Refusal r) {
            throw of(r);
        }
    }

    /** A service's refusal as the API answers it, with its extra body fields. */
    public static ApiException of(lab.steering.service.Refusal r) {
        ApiException e = new ApiException(r.status(), r.code(), r.getMessage());
        r.details().forEach(e::detail);
        return e;
    }

    /** An id from a path: a whole number, else 400 invalid_id ({@code what}: "an operator", "a run"). */
    public static long id(String value, String what) {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw badField("id", what + " id is a whole number, got '" + value + "'");
        }
    }

    public static ApiException notFound(String code, String message) {
        return new ApiException(404, code, message);
    }

    /** An extra field of the JSON body (e.g. an estimate), after "error" and "message". */
    public ApiException detail(String key, Object value) {
        details.put(key, value);
        return this;
    }

    /** A response header (e.g. Retry-After). */
    public ApiException header(String name, String value) {
        headers.put(name, value);
        return this;
    }

    public Map<String, Object> details() {
        return details;
    }

    public Map<String, String> headers() {
        return headers;
    }

    /**
     * The model a request names (the default when null), loaded if it was not: 404 naming it and the models there
     * are, or the registry's refusal (413 too large for the model memory, a folder that failed to load, 429 while
     * the memory is held by models in use).
     */
    public static lab.steering.model.LanguageModel model(lab.steering.service.ModelRegistry registry, String id) {
        return registry.resolve(id).orElseThrow(() -> id == null
                ? new ApiException(404, "no_model", "no model is available")
                : notFound("unknown_model", "model '" + id + "' is not available (models: " + registry.ids() + ")"));
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }
}
