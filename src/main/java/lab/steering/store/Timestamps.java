package lab.steering.store;

import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;

/** Times as the database keeps them. */
public final class Timestamps {

    private Timestamps() {
    }

    /**
     * Now, to the microsecond as a PostgreSQL timestamptz keeps it: an answer built from the entity just stored then
     * shows the same time as a later read of it.
     */
    public static OffsetDateTime now() {
        return OffsetDateTime.now().truncatedTo(ChronoUnit.MICROS);
    }
}
