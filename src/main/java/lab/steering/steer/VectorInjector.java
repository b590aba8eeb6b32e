package lab.steering.steer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import lab.steering.hook.HookContext;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;

/**
 * Adds a {@link SteeringVector} to the residual entering layer l_s - 1 at every position, prompt and generated
 * alike, scaled as the operator's injection so that strengths compare: {@code h_k <- h_k + lambda * v * ||h_k||
 * / (2 ||v||)}. Each position is independent of the others, so the KV cache needs no carried state.
 */
public final class VectorInjector implements Steerer {

    private final SteeringVector vector;
    private final double strength;
    private final NDArray direction; // (d) v / (2 ||v||), in the model's dtype
    private final double norm;
    private double lastResidualNorm;

    public VectorInjector(SteeringVector vector, double strength, NDManager m, DataType dtype) {
        this.vector = vector;
        this.strength = strength;
        this.norm = vector.norm();
        double[] unit = new double[vector.dim()];
        for (int i = 0; i < unit.length; i++) {
            unit[i] = norm == 0 ? 0 : vector.vector()[i] / (2 * norm);
        }
        this.direction = m.create(unit).toType(dtype, false);
    }

    @Override
    public Hooks hooks() {
        return Hooks.builder().add(Site.residPre(vector.layer() - 1), this::inject).build();
    }

    /** Computes in the injector's dtype; the residual keeps its own (bfloat16 or float16 when decoding on a GPU). */
    private NDArray inject(Site site, NDArray h, HookContext ctx) {
        NDArray hNorm = h.toType(direction.getDataType(), false).norm(new int[] {-1}, true); // (1, t, 1)
        lastResidualNorm = hNorm.get(new NDIndex("0, -1, 0")).toType(DataType.FLOAT64, false).getDouble();
        if (strength == 0 || norm == 0) {
            return h;
        }
        return h.add(hNorm.mul(direction).mul(strength).toType(h.getDataType(), false));
    }

    /** The vector's split layer l_s (it is added to the residual entering layer l_s - 1). */
    public int layer() {
        return vector.layer();
    }

    @Override
    public double strength() {
        return strength;
    }

    @Override
    public double lastDirectionNorm() {
        return norm;
    }

    @Override
    public double lastResidualNorm() {
        return lastResidualNorm;
    }
}
