package lab.steering.web;

import lab.steering.service.Busy;
import lab.steering.service.Refusal;
import lab.steering.service.jobs.WorkLimiter;
import lab.steering.store.DatabaseErrors;

/**
 * A refusal as a page shows it: the API's error code, and the form field it names ({@code invalid_<field>}), so
 * the template puts the message next to that field; {@link #general()} is the message of an error tied to no field.
 */
public record FormErrors(String field, String code, String message) {

    public static final FormErrors NONE = new FormErrors(null, null, null);

    /** The message when {@code f} is the field at fault, else null. */
    public String of(String f) {
        return f.equals(field) ? message : null;
    }

    /** The message when a field is at fault and it is neither {@code a} nor {@code b} (shown once, under a row). */
    public String otherThan(String a, String b) {
        return field != null && !field.equals(a) && !field.equals(b) ? message : null;
    }

    /** The message of an error that names no field (unknown operator, busy, ...), else null. */
    public String general() {
        return field == null ? message : null;
    }

    /** The same error tied to no field (a bad id in the address is no field of the page's forms). */
    public FormErrors unfielded() {
        return new FormErrors(null, code, message);
    }

    public boolean any() {
        return message != null;
    }

    /** The page form of what the API would answer; anything else (a bug) is rethrown to the error mappers. */
    public static FormErrors of(RuntimeException e) {
        if (e instanceof Refusal r) {
            return from(r.code(), r.getMessage());
        }
        if (e instanceof Busy b) {
            return new FormErrors(null, "busy", b.getMessage() + " (try again in " + b.retryAfterSeconds() + " s)");
        }
        if (DatabaseErrors.unavailable(e)) {
            return new FormErrors(null, "database_unavailable", "the database is unavailable; try again later");
        }
        throw e;
    }

    static FormErrors from(String code, String message) {
        String field = code != null && code.startsWith("invalid_") ? code.substring("invalid_".length()) : null;
        return new FormErrors(field, code, message);
    }
}
