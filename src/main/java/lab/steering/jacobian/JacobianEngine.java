package lab.steering.jacobian;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import java.util.function.IntConsumer;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelConfig;
import lab.steering.model.Threads;
import lab.steering.model.Transformer;

/**
 * Full detached Jacobians (METHOD.md sections 1-3): one recording pass, then the identity cotangents pushed through
 * the transposed frozen network in chunks. Also the two autograd computations the method is compared with: the
 * ordinary (not frozen) Jacobian, and the autograd oracle of the detached one (tests).
 */
public final class JacobianEngine {

    private JacobianEngine() {
    }

    public static DataType dtype(String name) {
        return switch (name) {
            case "float32" -> DataType.FLOAT32;
            case "float64" -> DataType.FLOAT64;
            default -> throw new IllegalArgumentException("dtype must be float32 or float64, got " + name);
        };
    }

    /** Output dims per transpose chunk so that the largest intermediate stays under {@code bytes}. */
    static int chunkSize(LanguageModel model, int tokens, DataType dtype, long bytes) {
        var c = model.config();
        long widest = Math.max(Math.max(c.intermediateSize(), c.hiddenSize()), (long) c.numHeads() * c.headDim());
        long perRow = (long) tokens * widest * dtype.getNumOfBytes() * 6; // a few live intermediates per row
        return (int) Math.max(1, Math.min(c.hiddenSize(), bytes / Math.max(1, perRow)));
    }

    /**
     * The full stack [T, d, d] for a target, by the transpose pass. {@code progress} gets the rows done so far: 0 once
     * the forward pass is recorded, then after every chunk. It may throw (e.g. a CancellationException) to stop the
     * computation; every array is freed on the way out.
     */
    public static JacobianStack full(LanguageModel model, long[] ids, DataType dtype, Target target, long chunkBytes,
                                     IntConsumer progress) {
        Threads.full(); // the engine's threads, whatever a decoding step left here
        Transformer tf = model.transformer(dtype);
        int d = tf.config().hiddenSize();
        int t = ids.length;
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            FrozenNetwork f = FrozenNetwork.record(tf, m, ids);
            progress.accept(0); // recorded: a first progress report (and cancellation point) before the rows
            double[][] jac = new double[t][d * d];
            int chunk = chunkSize(model, t, dtype, chunkBytes);
            if (FrozenNetwork.mlpMatricesFit(tf.config(), t, dtype, chunkBytes)) {
                f.precomputeMlp(); // all d rows go through: fewer FLOPs
            }
            for (int r0 = 0; r0 < d; r0 += chunk) {
                int r1 = Math.min(d, r0 + chunk);
                try (NDScope inner = new NDScope()) {
                    inner.suppressNotUsedWarning();
                    NDArray seed = m.eye(d, d, 0, dtype).get(new NDIndex("{}:{}, :", r0, r1));
                    scatterColumns(f.transposeColumns(target, seed), jac, r0);
                }
                progress.accept(r1);
            }
            return stack(f, target, ids, jac, dtype);
        }
    }

    /** The stack of a target's rows with its inputs, output and constant c (zero for families without biases). */
    private static JacobianStack stack(FrozenNetwork f, Target target, long[] ids, double[][] jac, DataType dtype) {
        int d = f.c.hiddenSize();
        return new JacobianStack(ids, d, jac, rows(f.targetInput(target)),
                f.targetOutput(target).toType(DataType.FLOAT64, false).toDoubleArray(), f.constant(target),
                name(dtype));
    }

    static String name(DataType dtype) {
        return dtype == DataType.FLOAT64 ? "float64" : "float32";
    }

    /**
     * Copies rows r0 .. r0 + B - 1 of every J_i out of transposed columns (d, T, B) (entry (k, i, b) is
     * {@code J_i[r0 + b][k]}): one (T, B, d) copy in the array's dtype, widened to double here (a float32 pass moves
     * half the bytes of a float64 conversion on the native side).
     */
    static void scatterColumns(NDArray columns, double[][] jac, int r0) {
        long[] shape = columns.getShape().getShape();
        int d = (int) shape[0];
        int t = (int) shape[1];
        int block = (int) shape[2] * d; // B rows of one token
        NDArray rows = columns.transpose(1, 2, 0); // (T, B, d)
        if (columns.getDataType() == DataType.FLOAT64) {
            double[] g = rows.toDoubleArray();
            for (int i = 0; i < t; i++) {
                System.arraycopy(g, i * block, jac[i], r0 * d, block);
            }
            return;
        }
        float[] g = rows.toType(DataType.FLOAT32, false).toFloatArray();
        for (int i = 0; i < t; i++) {
            double[] ji = jac[i];
            int from = i * block;
            int to = r0 * d;
            for (int k = 0; k < block; k++) {
                ji[to + k] = g[from + k];
            }
        }
    }

    /**
     * Copies rows r0 .. r0 + B - 1 of every J_i out of a (B, T, d) array whose batch entry b holds
     * {@code e_{r0+b}^T J_i} at position i.
     */
    static void scatterRows(NDArray rowsByToken, double[][] jac, int r0) {
        long[] shape = rowsByToken.getShape().getShape();
        int b = (int) shape[0];
        int t = (int) shape[1];
        int d = (int) shape[2];
        double[] g = rowsByToken.toType(DataType.FLOAT64, false).toDoubleArray();
        for (int row = 0; row < b; row++) {
            for (int i = 0; i < t; i++) {
                System.arraycopy(g, (row * t + i) * d, jac[i], (r0 + row) * d, d);
            }
        }
    }

    /**
     * Rows r0 .. r1 - 1 of the Jacobian of {@code fn} (B, T, d) -> (B, d) at {@code x0} (1, T, d) by one batched
     * autograd pass: x0 repeated B times, copy b back-propagates output dimension r0 + b.
     */
    /**
     * DJL's PyTorch engine allows one GradientCollector per JVM at a time (a static flag; a second one throws), so
     * autograd passes of analyses running on several threads take turns here.
     */
    private static final java.util.concurrent.locks.ReentrantLock AUTOGRAD = new java.util.concurrent.locks.ReentrantLock();

    private static void autogradRows(NDManager m, java.util.function.UnaryOperator<NDArray> fn, NDArray x0,
                                     int r0, int r1, double[][] jac) {
        int d = (int) x0.getShape().get(2);
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray xs = x0.repeat(0, r1 - r0).duplicate();
            xs.setRequiresGradient(true);
            AUTOGRAD.lock();
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray y = fn.apply(xs); // (B, d)
                NDArray pick = m.eye(d, d, 0, x0.getDataType()).get(new NDIndex("{}:{}, :", r0, r1));
                gc.backward(y.mul(pick).sum());
            } finally {
                AUTOGRAD.unlock();
            }
            scatterRows(xs.getGradient(), jac, r0);
        }
    }

    static double[][] rows(NDArray x) {
        long t = x.getShape().get(1);
        int d = (int) x.getShape().get(2);
        double[] flat = x.toType(DataType.FLOAT64, false).toDoubleArray();
        double[][] out = new double[(int) t][];
        for (int i = 0; i < t; i++) {
            out[i] = java.util.Arrays.copyOfRange(flat, i * d, (i + 1) * d);
        }
        return out;
    }

    /**
     * The ordinary Jacobian of the model output (no freezing) by autograd: the embeddings are repeated d times as a
     * batch, copy r back-propagates output dimension r. Returns the stack with the same inputs and output.
     */
    public static JacobianStack ordinary(LanguageModel model, long[] ids, DataType dtype) {
        return ordinary(model, ids, dtype, 64L << 20);
    }

    /** As {@link #ordinary(LanguageModel, long[], DataType)}, in batches of output rows bounded by {@code chunkBytes}. */
    public static JacobianStack ordinary(LanguageModel model, long[] ids, DataType dtype, long chunkBytes) {
        Threads.full(); // the engine's threads, whatever a decoding step left here
        Transformer tf = model.transformer(dtype);
        int d = tf.config().hiddenSize();
        int t = ids.length;
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray input = m.create(ids, new Shape(1, t));
            NDArray[] embedded = new NDArray[1]; // HF hidden_states[0]: after any embedding scale and positions
            tf.forward(input, null, Hooks.builder().add(Site.embed(), (s, x, c) -> embedded[0] = x).build());
            NDArray x0 = embedded[0].duplicate(); // (1, T, d)
            java.util.function.UnaryOperator<NDArray> fn = xs -> tf.forward(input, null,
                    Hooks.builder().add(Site.embed(), (s, x, c) -> xs).build()).get(new NDIndex(":, -1, :"));
            double[][] jac = new double[t][d * d];
            // autograd keeps every activation of the batch: budget a few layers' worth per row
            int chunk = Math.max(1, chunkSize(model, t, dtype, chunkBytes) / Math.max(1, tf.config().numLayers()));
            for (int r0 = 0; r0 < d; r0 += chunk) {
                autogradRows(m, fn, x0, r0, Math.min(d, r0 + chunk), jac);
            }
            double[] yv = fn.apply(x0).get(0).toType(DataType.FLOAT64, false).toDoubleArray();
            return new JacobianStack(ids, d, jac, rows(x0), yv, new double[d], name(dtype));
        }
    }

    /**
     * The detached Jacobian by autograd one output row at a time (d backward passes through the frozen network, each
     * seeded with one output direction), for benchmarks. With {@code keepGraph} as {@code
     * torch.autograd.functional.jacobian} does by default: one forward pass whose graph every backward pass reuses
     * (DJL's GradientCollector.backward frees the graph, so this calls the engine's backward). Without it as DJL's
     * public API allows: a forward pass of its own before each backward pass.
     */
    public static double[][] autogradPerRow(LanguageModel model, long[] ids, DataType dtype, Target target,
                                            boolean keepGraph) {
        Threads.full(); // the engine's threads, whatever a decoding step left here
        Transformer tf = model.transformer(dtype);
        int d = tf.config().hiddenSize();
        int t = ids.length;
        double[][] jac = new double[t][d * d];
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            FrozenNetwork f = FrozenNetwork.record(tf, m, ids);
            NDArray x0 = f.targetInput(target);
            NDArray directions = m.eye(d, d, 0, dtype);
            AUTOGRAD.lock();
            try {
                if (keepGraph) {
                    NDArray x = x0.duplicate();
                    x.setRequiresGradient(true);
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        PtNDArray y = (PtNDArray) f.apply(target, x); // (1, d)
                        for (int r = 0; r < d; r++) {
                            try (NDScope row = new NDScope()) {
                                row.suppressNotUsedWarning();
                                PtNDArray seed = (PtNDArray) directions.get(new NDIndex("{}:{}", r, r + 1));
                                JniUtils.backward(y, seed, true, false);
                                scatterRows(x.getGradient(), jac, r);
                                JniUtils.zeroGrad((PtNDArray) x);
                            }
                        }
                    }
                } else {
                    for (int r = 0; r < d; r++) {
                        try (NDScope row = new NDScope();
                             GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                            row.suppressNotUsedWarning();
                            NDArray x = x0.duplicate();
                            x.setRequiresGradient(true);
                            gc.backward(f.apply(target, x).get(new NDIndex(0, r)));
                            scatterRows(x.getGradient(), jac, r);
                        }
                    }
                }
            } finally {
                AUTOGRAD.unlock();
            }
        }
        return jac;
    }

    /**
     * Whether {@link #full} with {@code chunkBytes} forms the per-token MLP matrices below the top layer (when they fit)
     * rather than passing every cotangent through the two MLP weights: the two ways cost different work.
     */
    public static boolean formsMlpMatrices(ModelConfig c, int tokens, DataType dtype, long chunkBytes) {
        return FrozenNetwork.mlpMatricesFit(c, tokens, dtype, chunkBytes);
    }

    /** The detached Jacobian by autograd through the frozen network's forward (the slow test oracle). */
    public static JacobianStack autogradOracle(LanguageModel model, long[] ids, DataType dtype, Target target) {
        Threads.full(); // the engine's threads, whatever a decoding step left here
        Transformer tf = model.transformer(dtype);
        int d = tf.config().hiddenSize();
        int t = ids.length;
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            FrozenNetwork f = FrozenNetwork.record(tf, m, ids);
            NDArray x0 = f.targetInput(target);
            double[][] jac = new double[t][d * d];
            autogradRows(m, xs -> f.apply(target, xs), x0, 0, d, jac);
            return stack(f, target, ids, jac, dtype);
        }
    }
}
