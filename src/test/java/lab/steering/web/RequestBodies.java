package lab.steering.web;

import java.util.LinkedHashMap;
import java.util.Map;

/** JSON request bodies for RestAssured, written as alternating keys and values. */
final class RequestBodies {

    private RequestBodies() {
    }

    /** {@code body("model", "m", "prompt", "p")} is {@code {"model": "m", "prompt": "p"}}, keys in order. */
    static Map<String, Object> body(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }
}
