package lab.steering.steer;

import lab.steering.hook.Hooks;

/**
 * One steered generation's intervention (an operator {@link Injector} or an additive {@link VectorInjector}):
 * the hooks to run, and what it did at the last position it saw, for per-token diagnostics. Both add
 * {@code strength * direction * ||h|| / (2 ||direction||)} to the residual h, so the added vector's norm is
 * {@code |strength| * ||h|| / 2} whatever the direction.
 */
public interface Steerer {

    Hooks hooks();

    double strength();

    /** ||direction|| at the last position: ||a_k|| for an operator, ||v|| for a vector. */
    double lastDirectionNorm();

    /** ||h_k||, the unsteered residual at the last position. */
    double lastResidualNorm();

    /** The norm of the vector added at the last position. */
    default double lastAddedNorm() {
        return lastDirectionNorm() == 0 ? 0 : Math.abs(strength()) * lastResidualNorm() / 2;
    }
}
