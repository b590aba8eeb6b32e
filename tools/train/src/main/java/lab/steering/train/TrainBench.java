package lab.steering.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import lab.steering.hook.Hooks;
import lab.steering.model.ModelConfig;

/**
 * Times the parts of one training step for a model shape on random ids (no data needed): the transformer body
 * without gradients, body + lm_head + cross-entropy without gradients, the full forward + backward, and the AdamW
 * update; wall and process CPU seconds. Used to choose the default shape (docs/training.md).
 *
 * <pre>java lab.steering.train.TrainBench [--repeat 3] [--threads 2] [--vocab-size 6144 --hidden 256 ...]</pre>
 */
public final class TrainBench {

    private TrainBench() {
    }

    public static void main(String[] args) {
        TrainArgs a = TrainArgs.parse(args);
        int repeat = Integer.parseInt(a.take("repeat", "3"));
        Trainer.setUpEngine(Integer.parseInt(a.take("threads", "2")));
        Map<String, String> rest = new LinkedHashMap<>(a.rest());
        rest.putIfAbsent("vocab-size", "6144");
        TrainingConfig cfg = TrainingConfig.DEFAULTS.with(rest);
        ModelConfig mc = cfg.modelConfig(0, 1);
        Random r = new Random(1);
        long[] ids = new long[cfg.batch() * (cfg.context() + 1)];
        try (NDManager root = NDManager.newBaseManager(Device.cpu()); TrainModel model = TrainModel.init(mc, 1, root.newSubManager())) {
            AdamW adam = new AdamW(model.parameters(), root, 0.9, 0.95, 1e-8, 0.1, TrainModel::decays);
            System.out.printf("shape: d %d, layers %d, heads %d/%d, ff %d, context %d, batch %d, vocab %d: %,d parameters%n",
                    cfg.hidden(), cfg.layers(), cfg.heads(), cfg.kvHeads(), cfg.intermediate(), cfg.context(), cfg.batch(),
                    cfg.vocabSize(), model.parameterCount());
            for (int rep = 0; rep <= repeat; rep++) {
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = r.nextInt(cfg.vocabSize());
                }
                double[] body;
                double[] withHead;
                double[] train;
                double[] opt;
                try (NDManager m = root.newSubManager(); NDScope s = new NDScope()) {
                    s.suppressNotUsedWarning();
                    NDArray w = m.create(ids, new Shape(cfg.batch(), cfg.context() + 1));
                    NDArray in = w.get(":, :-1");
                    long[] t = mark();
                    model.transformer().forward(in, null, Hooks.NONE).sum().getFloat();
                    body = since(t);
                    t = mark();
                    model.loss(w).getFloat();
                    withHead = since(t);
                    t = mark();
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray l = model.loss(w);
                        gc.backward(l);
                        l.getFloat();
                    }
                    train = since(t);
                    t = mark();
                    Map<String, NDArray> grads = new LinkedHashMap<>();
                    model.parameters().forEach((n, p) -> grads.put(n, p.getGradient()));
                    Trainer.clipGlobalNorm(grads, 1.0);
                    adam.step(model.parameters(), grads, 1e-4);
                    grads.values().forEach(g -> g.subi(g));
                    opt = since(t);
                }
                if (rep > 0) { // the first pass warms up
                    double step = train[0] + opt[0];
                    System.out.printf(java.util.Locale.ROOT, "body %.2fs (cpu %.2f) | +head+CE %.2fs (cpu %.2f) | "
                                    + "fwd+bwd %.2fs (cpu %.2f) | adamw+clip %.2fs (cpu %.2f) | step %.2fs = %.0f tok/s%n",
                            body[0], body[1], withHead[0], withHead[1], train[0], train[1], opt[0], opt[1], step,
                            cfg.batch() * cfg.context() / step);
                }
            }
        }
    }

    private static long[] mark() {
        return new long[] {System.nanoTime(), Trainer.cpuNanos()};
    }

    private static double[] since(long[] t) {
        return new double[] {(System.nanoTime() - t[0]) / 1e9, (Trainer.cpuNanos() - t[1]) / 1e9};
    }
}
