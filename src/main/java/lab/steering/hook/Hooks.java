package lab.steering.hook;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The hooks registered for one forward call (or one generation). The forward pass asks it at every site;
 * an empty set costs a map lookup.
 */
public final class Hooks {

    /** No hooks: the plain forward pass. */
    public static final Hooks NONE = new Hooks(Collections.emptyMap());

    private final Map<Site, List<Hook>> bySite;

    private Hooks(Map<Site, List<Hook>> bySite) {
        this.bySite = bySite;
    }

    public static Builder builder() {
        return new Builder();
    }

    public boolean isEmpty() {
        return bySite.isEmpty();
    }

    /** True when a hook is registered at {@code site} (lets the forward pass skip work only a hook would see). */
    public boolean has(Site site) {
        return !bySite.isEmpty() && bySite.containsKey(site);
    }

    /** The hooks at {@code site} in registration order (empty when none). */
    public List<Hook> at(Site site) {
        List<Hook> h = bySite.get(site);
        return h == null ? List.of() : h;
    }

    /** The sites that have hooks. */
    public java.util.Set<Site> sites() {
        return bySite.keySet();
    }

    /** Runs the hooks at {@code site} in registration order and returns the (possibly replaced) activation. */
    public NDArray run(Site site, NDArray activation, HookContext ctx) {
        if (bySite.isEmpty()) {
            return activation;
        }
        List<Hook> hooks = bySite.get(site);
        if (hooks == null) {
            return activation;
        }
        NDArray x = activation;
        for (Hook h : hooks) {
            x = h.apply(site, x, ctx);
        }
        return x;
    }

    /** Collects hooks before a call. */
    public static final class Builder {
        private final Map<Site, List<Hook>> bySite = new HashMap<>();

        public Builder add(Site site, Hook hook) {
            bySite.computeIfAbsent(site, s -> new ArrayList<>()).add(hook);
            return this;
        }

        public Hooks build() {
            Map<Site, List<Hook>> copy = new HashMap<>();
            bySite.forEach((s, l) -> copy.put(s, List.copyOf(l)));
            return new Hooks(Collections.unmodifiableMap(copy));
        }
    }

    /** Sites per point, for documentation and validation. */
    public static Map<Point, List<Site>> sitesOf(int layers) {
        Map<Point, List<Site>> out = new EnumMap<>(Point.class);
        for (Point p : Point.values()) {
            List<Site> s = new ArrayList<>();
            if (p.perLayer()) {
                for (int l = 0; l < layers; l++) {
                    s.add(new Site(l, p));
                }
            } else {
                s.add(new Site(-1, p));
            }
            out.put(p, s);
        }
        return out;
    }
}
