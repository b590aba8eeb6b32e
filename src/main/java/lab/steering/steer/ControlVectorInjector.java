package lab.steering.steer;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.List;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;

/**
 * Steers with a saved vector of one or more layers: a {@link VectorInjector} per layer, each adding
 * {@code lambda * v_l * ||h|| / (2 ||v_l||)} to the residual entering its layer, so every layer's addition has the
 * norm a single-layer vector's would. The diagnostics (direction and residual norms) are those of the lowest layer.
 */
public final class ControlVectorInjector implements Steerer {

    private final List<VectorInjector> layers;

    public ControlVectorInjector(List<SteeringVector> vectors, double strength, NDManager m, DataType dtype) {
        if (vectors.isEmpty()) {
            throw new IllegalArgumentException("no vectors");
        }
        this.layers = vectors.stream()
                .sorted(java.util.Comparator.comparingInt(SteeringVector::layer))
                .map(v -> new VectorInjector(v, strength, m, dtype)).toList();
    }

    @Override
    public Hooks hooks() {
        Hooks.Builder b = Hooks.builder();
        for (VectorInjector inj : layers) {
            Hooks own = inj.hooks();
            Site site = Site.residPre(inj.layer() - 1);
            b.add(site, (s, h, ctx) -> own.run(s, h, ctx));
        }
        return b.build();
    }

    @Override
    public double strength() {
        return layers.get(0).strength();
    }

    @Override
    public double lastDirectionNorm() {
        return layers.get(0).lastDirectionNorm();
    }

    @Override
    public double lastResidualNorm() {
        return layers.get(0).lastResidualNorm();
    }
}
