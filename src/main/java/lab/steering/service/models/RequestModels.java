package lab.steering.service.models;

import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.RequestScoped;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.List;

/**
 * The models one HTTP request found through the {@link ModelRegistry}: pinned (never unloaded) until the request
 * ends, when the request context is destroyed.
 */
@RequestScoped
public class RequestModels {

    @Inject
    ModelRegistry registry;

    private final List<ModelRegistry.Pin> pins = new ArrayList<>();

    synchronized void add(ModelRegistry.Pin pin) {
        pins.add(pin);
    }

    synchronized List<ModelRegistry.Pin> pins() {
        return List.copyOf(pins);
    }

    @PreDestroy
    void release() {
        List<ModelRegistry.Pin> mine;
        synchronized (this) { // never held while calling the registry (which calls pins() under its own lock)
            mine = List.copyOf(pins);
            pins.clear();
        }
        registry.release(mine);
    }
}
