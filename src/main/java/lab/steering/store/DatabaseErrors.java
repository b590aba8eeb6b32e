package lab.steering.store;

import java.sql.SQLException;
import java.sql.SQLNonTransientConnectionException;
import java.sql.SQLTransientConnectionException;

/** Tells "the database is down or unreachable" apart from other persistence failures. */
public final class DatabaseErrors {

    private DatabaseErrors() {
    }

    /**
     * True when a cause is a connection failure: a JDBC connection exception, SQLState class 08 (connection
     * exception), 57P01..57P03 (server shutting down, cannot connect now), or Hibernate's JDBCConnectionException.
     */
    public static boolean unavailable(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof SQLTransientConnectionException || t instanceof SQLNonTransientConnectionException
                    || t.getClass().getName().equals("org.hibernate.exception.JDBCConnectionException")) {
                return true;
            }
            if (t instanceof SQLException s && s.getSQLState() != null
                    && (s.getSQLState().startsWith("08") || s.getSQLState().startsWith("57P"))) {
                return true;
            }
            if (t.getMessage() != null && t.getMessage().contains("Unable to acquire JDBC Connection")) {
                return true;
            }
        }
        return false;
    }

    /**
     * True when a cause is a JDBC or Hibernate failure: its message quotes the SQL statement and its values, which
     * belong in the server log, not in an answer.
     */
    public static boolean fromTheDatabase(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof SQLException || t instanceof org.hibernate.JDBCException) {
                return true;
            }
        }
        return false;
    }
}
