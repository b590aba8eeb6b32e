package lab.steering.web;

/** Every API error's body: {"error": CODE, "message": TEXT}. */
public record ErrorBody(String error, String message) {
}
