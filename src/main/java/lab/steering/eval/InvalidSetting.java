package lab.steering.eval;

/** A suite or benchmark setting that cannot run, naming the field (JSON path, e.g. {@code concepts[2].words[0]}). */
public final class InvalidSetting extends IllegalArgumentException {

    private final String field;

    public InvalidSetting(String field, String problem) {
        super(field + ": " + problem);
        this.field = field;
    }

    public String field() {
        return field;
    }

    /** The problem without the field name. */
    public String problem() {
        return getMessage().substring(field.length() + 2);
    }
}
