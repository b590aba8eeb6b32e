package lab.steering.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lab.steering.hook.Hooks;
import lab.steering.model.ModelConfig;
import lab.steering.model.Transformer;
import lab.steering.model.Weights;

/**
 * A trainable Llama model: float32 {@link Weights} that require gradients, the project's own {@link Transformer}
 * over them, and the language-modelling loss. Parameters are kept by their Hugging Face names (the names
 * checkpoints and the published safetensors use), in a fixed order.
 */
public final class TrainModel implements AutoCloseable {

    /**
     * The Hugging Face names the trainer keeps its parameters by (checkpoints, the published safetensors, which the
     * core's Weights.load reads back: PublisherTest). A layer's tensors are in the order {@link Llama#layer} takes
     * them; this list is the only place they are named on the training side.
     */
    private static final String EMBED = "model.embed_tokens.weight";
    private static final String FINAL_NORM = "model.norm.weight";
    private static final String LAYER_PREFIX = "model.layers.";
    private static final String[] LAYER_TENSORS = {"input_layernorm.weight", "self_attn.q_proj.weight",
            "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
            "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"};

    private final ModelConfig config;
    private final NDManager manager;
    private final Weights weights;
    private final Transformer transformer;
    private final LinkedHashMap<String, NDArray> params;

    private TrainModel(ModelConfig config, NDManager manager, Map<String, float[]> values) {
        this.config = config;
        this.manager = manager;
        this.params = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : shapes(config).entrySet()) {
            float[] v = values.get(e.getKey());
            if (v == null) {
                throw new IllegalArgumentException("missing parameter " + e.getKey());
            }
            NDArray a = manager.create(v, new Shape(e.getValue()));
            a.setName(e.getKey());
            a.setRequiresGradient(true);
            params.put(e.getKey(), a);
        }
        List<Weights.Layer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            NDArray[] t = new NDArray[LAYER_TENSORS.length];
            for (int k = 0; k < t.length; k++) {
                t[k] = params.get(LAYER_PREFIX + i + "." + LAYER_TENSORS[k]);
            }
            layers.add(Llama.layer(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]));
        }
        NDArray embed = params.get(EMBED);
        this.weights = Llama.weights(embed, List.copyOf(layers), params.get(FINAL_NORM), embed);
        this.transformer = new Transformer(config, weights, manager);
    }

    /**
     * Random initialisation: every matrix normal with std 0.02, the two projections that write into the residual
     * stream (o_proj, down_proj) with std 0.02 / sqrt(2 * layers) (GPT-2's scaling), RMSNorm weights 1.
     */
    public static TrainModel init(ModelConfig config, long seed, NDManager manager) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double residual = 0.02 / Math.sqrt(2.0 * config.numLayers());
        Map<String, float[]> values = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : shapes(config).entrySet()) {
            long n = 1;
            for (long s : e.getValue()) {
                n *= s;
            }
            float[] v = new float[(int) n];
            if (e.getValue().length == 1) {
                java.util.Arrays.fill(v, 1f);
            } else {
                double std = e.getKey().endsWith("o_proj.weight") || e.getKey().endsWith("down_proj.weight")
                        ? residual : 0.02;
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (gaussian(rnd) * std);
                }
            }
            values.put(e.getKey(), v);
        }
        return new TrainModel(config, manager, values);
    }

    /** A model from stored float32 values (a checkpoint), keyed by Hugging Face names. */
    public static TrainModel of(ModelConfig config, Map<String, float[]> values, NDManager manager) {
        return new TrainModel(config, manager, values);
    }

    private static double gaussian(SplittableRandom r) {
        // Box-Muller on the seeded stream (java.util.Random's nextGaussian is not available on SplittableRandom in 17)
        double u1 = r.nextDouble();
        double u2 = r.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }

    /** Hugging Face names and shapes of a tied Llama model, in the order parameters are kept. */
    public static LinkedHashMap<String, long[]> shapes(ModelConfig c) {
        long d = c.hiddenSize();
        long q = (long) c.numHeads() * c.headDim();
        long kv = (long) c.numKvHeads() * c.headDim();
        long ff = c.intermediateSize();
        long[][] layer = {{d}, {q, d}, {kv, d}, {kv, d}, {d, q}, {d}, {ff, d}, {ff, d}, {d, ff}}; // LAYER_TENSORS
        LinkedHashMap<String, long[]> s = new LinkedHashMap<>();
        s.put(EMBED, new long[] {c.vocabSize(), d});
        for (int i = 0; i < c.numLayers(); i++) {
            for (int k = 0; k < LAYER_TENSORS.length; k++) {
                s.put(LAYER_PREFIX + i + "." + LAYER_TENSORS[k], layer[k]);
            }
        }
        s.put(FINAL_NORM, new long[] {d});
        return s;
    }

    /**
     * Whether AdamW's decoupled weight decay applies: yes for the attention and MLP matrices; no for RMSNorm
     * weights (decay would pull their scale toward 0, not toward "simple") and no for the tied embedding, which is
     * also the output layer: rows of rare tokens get almost no gradient, so decay would erase them.
     */
    public static boolean decays(String name) {
        return name.startsWith(LAYER_PREFIX) && name.endsWith("proj.weight");
    }

    public ModelConfig config() {
        return config;
    }

    public Transformer transformer() {
        return transformer;
    }

    public LinkedHashMap<String, NDArray> parameters() {
        return params;
    }

    public NDManager manager() {
        return manager;
    }

    public long parameterCount() {
        return params.values().stream().mapToLong(a -> a.getShape().size()).sum();
    }

    /** Mean next-token cross-entropy of {@code windows} (rows, context + 1): inputs are all but the last id. */
    public NDArray loss(NDArray windows) {
        long t = windows.getShape().get(1) - 1;
        NDArray inputs = windows.get(new NDIndex(":, :{}", t));
        NDArray targets = windows.get(new NDIndex(":, 1:"));
        NDArray logits = transformer.logits(transformer.forward(inputs, null, Hooks.NONE));
        return crossEntropy(logits, targets).mean();
    }

    /**
     * Per-position negative log-likelihood: {@code -log_softmax(logits)[target]}, computed in float32.
     *
     * @param logits  (..., vocab)
     * @param targets (...) int64 ids
     * @return (...) nats
     */
    public static NDArray crossEntropy(NDArray logits, NDArray targets) {
        NDArray logp = logits.toType(DataType.FLOAT32, false).logSoftmax(-1);
        NDArray picked = logp.gather(targets.toType(DataType.INT64, false).expandDims(-1), -1);
        return picked.squeeze(-1).neg();
    }

    /**
     * Sum of NLL and count of predicted tokens over consecutive, non-overlapping windows of a token stream:
     * window k reads ids [k*context, k*context + context] and predicts ids k*context + 1 ... k*context + context, so
     * every id but the first is predicted exactly once (the last window may be shorter). No gradients.
     *
     * @param maxWindows at most this many windows, evenly spaced over the stream; 0 = all
     */
    public static double[] streamNll(Transformer tf, NDManager parent, int[] tokens, int context, int batch,
                                     int maxWindows) {
        List<int[]> all = new ArrayList<>();
        for (int start = 0; start + 1 < tokens.length; start += context) {
            int end = Math.min(tokens.length, start + context + 1);
            all.add(java.util.Arrays.copyOfRange(tokens, start, end));
        }
        List<int[]> windows = all;
        if (maxWindows > 0 && all.size() > maxWindows) {
            windows = new ArrayList<>();
            for (int i = 0; i < maxWindows; i++) {
                windows.add(all.get((int) ((long) i * all.size() / maxWindows)));
            }
        }
        double sum = 0;
        long count = 0;
        for (int i = 0; i < windows.size(); ) {
            int len = windows.get(i).length;
            int j = i;
            List<int[]> group = new ArrayList<>();
            while (j < windows.size() && group.size() < batch && windows.get(j).length == len) {
                group.add(windows.get(j++));
            }
            long[] flat = new long[group.size() * len];
            for (int r = 0; r < group.size(); r++) {
                for (int k = 0; k < len; k++) {
                    flat[r * len + k] = group.get(r)[k];
                }
            }
            try (NDManager m = parent.newSubManager(); NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                NDArray w = m.create(flat, new Shape(group.size(), len));
                NDArray inputs = w.get(new NDIndex(":, :{}", len - 1));
                NDArray targets = w.get(new NDIndex(":, 1:"));
                NDArray nll = crossEntropy(tf.logits(tf.forward(inputs, null, Hooks.NONE)), targets);
                sum += nll.toType(DataType.FLOAT64, false).sum().getDouble();
                count += (long) group.size() * (len - 1);
            }
            i = j;
        }
        return new double[] {sum, count};
    }

    @Override
    public void close() {
        manager.close();
    }
}
