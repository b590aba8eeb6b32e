package lab.steering.web;

/** A request the API refuses: HTTP status, a stable error code and a message naming the problem. */
public class ApiException extends RuntimeException {

    private final int status;
    private final String code;

    public ApiException(int status, String code, String message) {
        super(message);
        this.status = status;
        this.code = code;
    }

    public static ApiException badField(String field, String problem) {
        return new ApiException(400, "invalid_" + field, field + ": " + problem);
    }

    public static ApiException notFound(String code, String message) {
        return new ApiException(404, code, message);
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }
}
