package lab.steering.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import lab.steering.model.ModelConfig;

/**
 * Hyperparameters of one training run: model shape, data windows, optimizer and schedule. They are stored in every
 * checkpoint; a resumed run must use the same values (see {@link #differences}).
 *
 * <p>Values come from the defaults below, then a properties file ({@code --config FILE}), then command-line
 * {@code --key value} pairs with the same keys (kebab-case, e.g. {@code --peak-lr 1e-3}).
 *
 * @param vocabSize     V; 0 = take it from the tokenizer
 * @param hidden        d
 * @param layers        decoder layers
 * @param heads         query heads
 * @param kvHeads       key/value heads (GQA)
 * @param intermediate  SwiGLU hidden width
 * @param context       tokens per training window (the model's max_position_embeddings)
 * @param batch         windows per micro-batch
 * @param accum         micro-batches per optimizer step (gradient accumulation)
 * @param steps         optimizer steps in the whole run (the cosine schedule spans them)
 * @param warmup        linear warm-up steps
 * @param peakLr        learning rate after warm-up
 * @param minLrFraction cosine decays to this fraction of the peak
 * @param weightDecay   decoupled (AdamW) decay on the projection matrices
 * @param beta1         AdamW first-moment decay
 * @param beta2         AdamW second-moment decay
 * @param eps           AdamW epsilon
 * @param clip          global gradient-norm clip
 * @param evalEvery     steps between validation passes
 * @param evalWindows   validation windows used by the periodic validation (the final evaluation uses all)
 * @param seed          initialisation and window-sampling seed
 * @param ropeTheta     RoPE base
 * @param rmsNormEps    RMSNorm epsilon
 */
public record TrainingConfig(
        int vocabSize,
        int hidden,
        int layers,
        int heads,
        int kvHeads,
        int intermediate,
        int context,
        int batch,
        int accum,
        int steps,
        int warmup,
        double peakLr,
        double minLrFraction,
        double weightDecay,
        double beta1,
        double beta2,
        double eps,
        double clip,
        int evalEvery,
        int evalWindows,
        long seed,
        double ropeTheta,
        double rmsNormEps) {

    public static final TrainingConfig DEFAULTS = new TrainingConfig(
            0, 256, 6, 8, 4, 688, 256, 16, 1, 3000, 150, 1.5e-3, 0.1, 0.1, 0.9, 0.95, 1e-8, 1.0,
            250, 64, 20261126L, 10000.0, 1e-5);

    private static final ObjectMapper JSON = new ObjectMapper();

    public TrainingConfig {
        if (hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || intermediate <= 0 || context <= 1
                || batch <= 0 || accum <= 0 || steps <= 0 || warmup < 0 || evalEvery <= 0 || evalWindows <= 0) {
            throw new IllegalArgumentException("sizes and counts must be positive: " + this);
        }
        if (hidden % heads != 0 || (hidden / heads) % 2 != 0) {
            throw new IllegalArgumentException("hidden " + hidden + " must split into " + heads + " heads of even width");
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads " + heads + " is not a multiple of kv-heads " + kvHeads);
        }
    }

    public int headDim() {
        return hidden / heads;
    }

    /** Tokens consumed by one optimizer step. */
    public long tokensPerStep() {
        return (long) batch * accum * context;
    }

    /** Linear warm-up from 0 to the peak over {@code warmup} steps, then cosine decay to {@code minLrFraction}. */
    public double learningRate(int step) {
        if (step < warmup) {
            return peakLr * (step + 1) / warmup;
        }
        double progress = steps <= warmup ? 1 : Math.min(1.0, (double) (step - warmup) / (steps - warmup));
        double min = peakLr * minLrFraction;
        return min + 0.5 * (peakLr - min) * (1 + Math.cos(Math.PI * progress));
    }

    /** The Hugging Face config this run trains (tied embeddings, no rope scaling), with BOS/EOS ids. */
    public ModelConfig modelConfig(int bos, int eos) {
        if (vocabSize <= 0) {
            throw new IllegalStateException("vocab size not resolved");
        }
        return Llama.config(hidden, intermediate, layers, heads, kvHeads, headDim(), vocabSize, context, rmsNormEps,
                ropeTheta, null, true, bos, List.of(eos), "float32");
    }

    public TrainingConfig withVocabSize(int v) {
        return with(Map.of("vocab-size", Integer.toString(v)));
    }

    // ---- parsing and serialisation: one generic path through the JSON tree ----

    /** The fields as a JSON object with kebab-case keys. */
    public ObjectNode toJson() {
        ObjectNode n = JSON.createObjectNode();
        for (var c : TrainingConfig.class.getRecordComponents()) {
            try {
                Object v = c.getAccessor().invoke(this);
                n.set(kebab(c.getName()), JSON.valueToTree(v));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return n;
    }

    public static TrainingConfig fromJson(JsonNode n) {
        Map<String, String> values = new LinkedHashMap<>();
        n.fields().forEachRemaining(e -> values.put(e.getKey(), e.getValue().asText()));
        return DEFAULTS.with(values);
    }

    /** A copy with some fields replaced (kebab-case keys); unknown keys are an error. */
    public TrainingConfig with(Map<String, String> values) {
        var comps = TrainingConfig.class.getRecordComponents();
        Object[] args = new Object[comps.length];
        Map<String, String> left = new LinkedHashMap<>(values);
        for (int i = 0; i < comps.length; i++) {
            var c = comps[i];
            String v = left.remove(kebab(c.getName()));
            try {
                if (v == null) {
                    args[i] = c.getAccessor().invoke(this);
                } else if (c.getType() == int.class) {
                    args[i] = (int) Double.parseDouble(v);
                } else if (c.getType() == long.class) {
                    args[i] = Long.parseLong(v);
                } else {
                    args[i] = Double.parseDouble(v);
                }
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--" + kebab(c.getName()) + ": not a number: " + v);
            }
        }
        if (!left.isEmpty()) {
            throw new IllegalArgumentException("unknown training setting(s): " + left.keySet() + "; known: " + keys());
        }
        try {
            Class<?>[] types = java.util.Arrays.stream(comps).map(java.lang.reflect.RecordComponent::getType)
                    .toArray(Class<?>[]::new);
            return TrainingConfig.class.getDeclaredConstructor(types).newInstance(args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Settings from a properties file (same keys as the command line, without dashes). */
    public TrainingConfig withProperties(Path file) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file)) {
            p.load(r);
        }
        Map<String, String> m = new LinkedHashMap<>();
        p.stringPropertyNames().forEach(k -> m.put(k.trim(), p.getProperty(k).trim()));
        return with(m);
    }

    public static List<String> keys() {
        List<String> out = new ArrayList<>();
        for (var c : TrainingConfig.class.getRecordComponents()) {
            out.add(kebab(c.getName()));
        }
        return out;
    }

    /** Settings that differ between two configs, as "key: a -> b" lines. */
    public List<String> differences(TrainingConfig other) {
        List<String> out = new ArrayList<>();
        ObjectNode a = toJson();
        ObjectNode b = other.toJson();
        a.fieldNames().forEachRemaining(k -> {
            if (!a.get(k).equals(b.get(k))) {
                out.add(k + ": " + a.get(k) + " -> " + b.get(k));
            }
        });
        return out;
    }

    static String kebab(String camel) {
        return camel.replaceAll("([a-z0-9])([A-Z])", "$1-$2").toLowerCase(java.util.Locale.ROOT);
    }

    @Override
    public String toString() {
        return "TrainingConfig" + toJsonString();
    }

    private String toJsonString() {
        StringBuilder sb = new StringBuilder("{");
        for (var c : TrainingConfig.class.getRecordComponents()) {
            try {
                sb.append(sb.length() > 1 ? ", " : "").append(kebab(c.getName())).append('=')
                        .append(c.getAccessor().invoke(this));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return sb.append('}').toString();
    }
}
