package lab.steering.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * AdamW (Loshchilov and Hutter) with the update PyTorch's {@code torch.optim.AdamW} makes, applied in place to
 * NDArrays outside any gradient collector:
 * <pre>
 *   p  -= lr * wd * p                      (decoupled decay; only where {@code decays} says so)
 *   m   = b1 m + (1 - b1) g
 *   v   = b2 v + (1 - b2) g^2
 *   p  -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * </pre>
 * with t the 1-based step count. DJL's own {@code ai.djl.training.optimizer.AdamW} works on a Block's
 * ParameterStore; the model here is plain arrays, so this class is the optimizer.
 */
public final class AdamW {

    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Predicate<String> decays;
    private final LinkedHashMap<String, NDArray> m = new LinkedHashMap<>();
    private final LinkedHashMap<String, NDArray> v = new LinkedHashMap<>();
    private final NDManager manager;
    private long t;

    /** Zero moments in {@code manager} for each parameter. */
    public AdamW(Map<String, NDArray> params, NDManager manager, double beta1, double beta2, double eps,
                 double weightDecay, Predicate<String> decays) {
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.decays = decays;
        this.manager = manager;
        params.forEach((name, p) -> {
            m.put(name, manager.zeros(p.getShape(), p.getDataType()));
            v.put(name, manager.zeros(p.getShape(), p.getDataType()));
        });
    }

    /** One update of every parameter with its gradient; {@code grads} is keyed like the parameters. */
    public void step(Map<String, NDArray> params, Map<String, NDArray> grads, double lr) {
        t++;
        double bc1 = 1 - Math.pow(beta1, t);
        double bc2 = 1 - Math.pow(beta2, t);
        double stepSize = lr / bc1;
        double sqrtBc2 = Math.sqrt(bc2);
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                String name = e.getKey();
                NDArray p = e.getValue();
                NDArray g = grads.get(name);
                NDArray mi = m.get(name);
                NDArray vi = v.get(name);
                if (weightDecay != 0 && decays.test(name)) {
                    p.muli(1 - lr * weightDecay);
                }
                mi.muli(beta1).addi(g.mul(1 - beta1));
                vi.muli(beta2).addi(g.square().muli(1 - beta2));
                NDArray denom = vi.sqrt().divi(sqrtBc2).addi(eps);
                p.subi(mi.div(denom).muli(stepSize));
            }
        }
    }

    /** Updates made so far (PyTorch's {@code state['step']}). */
    public long steps() {
        return t;
    }

    public LinkedHashMap<String, NDArray> firstMoments() {
        return m;
    }

    public LinkedHashMap<String, NDArray> secondMoments() {
        return v;
    }

    /** Restores the state of a checkpoint: the step count and moments (copied into the existing arrays). */
    public void restore(long steps, Map<String, float[]> first, Map<String, float[]> second) {
        this.t = steps;
        replace(m, first);
        replace(v, second);
    }

    private void replace(LinkedHashMap<String, NDArray> state, Map<String, float[]> values) {
        for (Map.Entry<String, NDArray> e : state.entrySet()) {
            NDArray old = e.getValue();
            NDArray fresh = manager.create(need(values, e.getKey()), old.getShape());
            e.setValue(fresh);
            old.close();
        }
    }

    private static float[] need(Map<String, float[]> values, String name) {
        float[] f = values.get(name);
        if (f == null) {
            throw new IllegalArgumentException("checkpoint lacks optimizer state for " + name);
        }
        return f;
    }
}
