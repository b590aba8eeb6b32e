package lab.steering.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class AdamWTest {

    /**
     * Two AdamW steps on a 3-element tensor against the update written out by hand (PyTorch's torch.optim.AdamW
     * formula): decay p *= 1 - lr wd, then m, v, bias corrections, p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
     */
    @Test
    void twoStepsMatchHandComputedUpdate() {
        double lr = 0.1;
        double wd = 0.1;
        double b1 = 0.9;
        double b2 = 0.95;
        double eps = 1e-8;
        float[] p0 = {1.0f, -2.0f, 0.5f};
        float[][] g = {{0.5f, -1.0f, 0.0f}, {-0.25f, 0.5f, 2.0f}};
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray decayed = m.create(p0.clone());
            NDArray plain = m.create(p0.clone());
            Map<String, NDArray> params = new LinkedHashMap<>();
            params.put("model.layers.0.mlp.up_proj.weight", decayed); // decays
            params.put("model.norm.weight", plain);                    // does not
            AdamW adam = new AdamW(params, m, b1, b2, eps, wd, TrainModel::decays);
            for (float[] gi : g) {
                Map<String, NDArray> grads = new LinkedHashMap<>();
                grads.put("model.layers.0.mlp.up_proj.weight", m.create(gi));
                grads.put("model.norm.weight", m.create(gi));
                adam.step(params, grads, lr);
            }
            // by hand, element by element
            double[] wantDecayed = new double[3];
            double[] wantPlain = new double[3];
            for (int i = 0; i < 3; i++) {
                for (int pass = 0; pass < 2; pass++) {
                    double p = p0[i];
                    double mm = 0;
                    double vv = 0;
                    for (int t = 1; t <= 2; t++) {
                        double gr = g[t - 1][i];
                        if (pass == 0) {
                            p *= 1 - lr * wd;
                        }
                        mm = b1 * mm + (1 - b1) * gr;
                        vv = b2 * vv + (1 - b2) * gr * gr;
                        double bc1 = 1 - Math.pow(b1, t);
                        double bc2 = 1 - Math.pow(b2, t);
                        p -= lr / bc1 * mm / (Math.sqrt(vv) / Math.sqrt(bc2) + eps);
                    }
                    (pass == 0 ? wantDecayed : wantPlain)[i] = p;
                }
            }
            assertArrayEquals(toFloat(wantDecayed), decayed.toFloatArray(), 1e-6f);
            assertArrayEquals(toFloat(wantPlain), plain.toFloatArray(), 1e-6f);
            assertEquals(2, adam.steps());
        }
    }

    /** The first Adam step moves every coordinate with a nonzero gradient by lr, against the gradient's sign. */
    @Test
    void firstStepIsSignTimesLearningRate() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray p = m.create(new float[] {0f, 0f, 0f});
            Map<String, NDArray> params = Map.of("model.norm.weight", p);
            AdamW adam = new AdamW(params, m, 0.9, 0.999, 1e-12, 0.0, n -> false);
            adam.step(params, Map.of("model.norm.weight", m.create(new float[] {3f, -0.001f, 0f})), 0.01);
            assertArrayEquals(new float[] {-0.01f, 0.01f, 0f}, p.toFloatArray(), 1e-7f);
        }
    }

    private static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }
}
