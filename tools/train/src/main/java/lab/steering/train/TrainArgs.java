package lab.steering.train;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Command-line options of the training tools: {@code --key value} pairs and bare {@code --flag}s (a flag is a key
 * followed by another key or by nothing). {@code --key=value} works too.
 */
final class TrainArgs {

    private final Map<String, String> values;

    private TrainArgs(Map<String, String> values) {
        this.values = values;
    }

    static TrainArgs parse(String[] args) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || a.length() < 3) {
                throw new IllegalArgumentException("expected --key [value], got '" + a + "'");
            }
            String key = a.substring(2);
            int eq = key.indexOf('=');
            if (eq > 0) {
                m.put(key.substring(0, eq), key.substring(eq + 1));
            } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                m.put(key, args[++i]);
            } else {
                m.put(key, "true");
            }
        }
        return new TrainArgs(m);
    }

    String require(String key) {
        String v = values.get(key);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + key);
        }
        return v;
    }

    String get(String key, String fallback) {
        return values.getOrDefault(key, fallback);
    }

    boolean flag(String key) {
        return Boolean.parseBoolean(values.getOrDefault(key, "false"));
    }

    /** Removes and returns a key (so that what is left can be checked as training settings). */
    String take(String key, String fallback) {
        String v = values.remove(key);
        return v == null ? fallback : v;
    }

    boolean takeFlag(String key) {
        return Boolean.parseBoolean(take(key, "false"));
    }

    Map<String, String> rest() {
        return values;
    }
}
