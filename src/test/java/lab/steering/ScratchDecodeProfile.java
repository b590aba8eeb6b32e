package lab.steering;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import java.nio.file.Path;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.KvCache;
import lab.steering.model.LanguageModel;
import lab.steering.model.Transformer;
import lab.steering.model.Weights;

public class ScratchDecodeProfile {
    public static void main(String[] a) throws Exception {
        LanguageModel model = LanguageModel.load(Path.of(a.length > 0 ? a[0] : "models/steering-lab-base"), Device.cpu());
        Transformer tf = model.decoder();
        long[] prompt = new long[10];
        for (int i = 0; i < 10; i++) prompt[i] = 5 + i;
        if (Boolean.getBoolean("one")) ai.djl.pytorch.jni.JniUtils.setNumThreads(1);
        System.out.println("threads " + ai.djl.pytorch.jni.JniUtils.getNumThreads());
        new Thread(() -> System.out.println("other thread sees " + ai.djl.pytorch.jni.JniUtils.getNumThreads())).start();
        for (int rep = 0; rep < Integer.getInteger("reps", 5); rep++) {
            try (NDManager m = model.manager().newSubManager();
                 KvCache cache = new KvCache(m, tf.config(), 1, 80, tf.dataType())) {
                Generator.lastLogits(tf, m, prompt, cache, Hooks.NONE);
                long t0 = System.nanoTime();
                for (int s = 0; s < 64; s++) Generator.lastLogits(tf, m, new long[] {7}, cache, Hooks.NONE);
                System.out.printf("threads %d decode step %.3f ms%n", ai.djl.pytorch.jni.JniUtils.getNumThreads(), (System.nanoTime() - t0) / 1e6 / 64);
                ai.djl.pytorch.jni.JniUtils.setNumThreads(rep % 2 == 0 ? 1 : 2);
            }
        }
        try (NDManager m = model.manager().newSubManager()) {
            int d = tf.config().hiddenSize();
            NDArray x = m.randomNormal(new Shape(1, 1, d));
            NDArray xf = m.randomNormal(new Shape(1, 1, tf.config().intermediateSize()));
            for (int rep = 0; rep < 3; rep++) {
                long t0 = System.nanoTime();
                for (int s = 0; s < 64; s++) {
                    try (NDScope sc = new NDScope()) {
                        for (Weights.Layer lw : tf.weights().layers()) {
                            Linear.linear(x, lw.wq()); Linear.linear(x, lw.wk()); Linear.linear(x, lw.wv()); Linear.linear(x, lw.wo());
                            Linear.linear(x, lw.gate()); Linear.linear(x, lw.up()); Linear.linear(xf, lw.down());
                        }
                        Linear.linear(x, tf.weights().lmHead());
                    }
                }
                System.out.printf("linears only %.3f ms/step%n", (System.nanoTime() - t0) / 1e6 / 64);
                t0 = System.nanoTime();
                for (int s = 0; s < 64; s++) {
                    try (NDScope sc = new NDScope()) {
                        for (int k = 0; k < 100; k++) x.add(x);
                    }
                }
                System.out.printf("100 adds %.3f ms%n", (System.nanoTime() - t0) / 1e6 / 64);
                t0 = System.nanoTime();
                for (int s = 0; s < 64; s++) {
                    try (NDScope sc = new NDScope()) {
                        Linear.linear(x, tf.weights().lmHead());
                    }
                }
                System.out.printf("lm head %.3f ms%n", (System.nanoTime() - t0) / 1e6 / 64);
            }
        }
        System.exit(0);
    }
}
