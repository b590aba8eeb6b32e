package lab.steering.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CrossEntropyTest {

    /** The DJL cross-entropy (logSoftmax + gather) equals a plain-Java log-sum-exp in double precision. */
    @Test
    void matchesPlainJavaLogSoftmax() {
        int b = 2;
        int t = 3;
        int v = 7;
        Random r = new Random(7);
        float[] logits = new float[b * t * v];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (r.nextGaussian() * 3);
        }
        long[] targets = new long[b * t];
        for (int i = 0; i < targets.length; i++) {
            targets[i] = r.nextInt(v);
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray nll = TrainModel.crossEntropy(m.create(logits, new Shape(b, t, v)), m.create(targets, new Shape(b, t)));
            assertEquals(new Shape(b, t), nll.getShape());
            float[] got = nll.toFloatArray();
            double mean = 0;
            for (int pos = 0; pos < b * t; pos++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int k = 0; k < v; k++) {
                    max = Math.max(max, logits[pos * v + k]);
                }
                double sum = 0;
                for (int k = 0; k < v; k++) {
                    sum += Math.exp(logits[pos * v + k] - max);
                }
                double want = -(logits[pos * v + (int) targets[pos]] - max - Math.log(sum));
                assertEquals(want, got[pos], 1e-5, "position " + pos);
                mean += want / (b * t);
            }
            assertEquals(mean, nll.mean().getFloat(), 1e-5);
        }
    }
}
