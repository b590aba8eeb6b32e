package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import lab.steering.SharedModels;
import lab.steering.generate.Generator;
import lab.steering.hook.Hooks;
import lab.steering.model.KvCache;
import lab.steering.model.LanguageModel;
import lab.steering.model.Transformer;
import lab.steering.testing.SafetensorsTestReader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The app's cached steering (operator built by {@link OperatorBuilder}, {@link Injector} hooks, the KV cache: one new
 * position per step) against an independent implementation of the paper's algorithm: Hugging Face transformers'
 * modules in float64, J_C by autograd through the detached model, the whole text re-encoded at every greedy step
 * ({@code scripts/reference/detached_jacobian.py}, METHOD.md section 5). Compared: the steered logits of every step
 * (not only the ids) and the greedy ids.
 *
 * <p>Operators are stored in float32 ({@link SteeringOperator}), so steering is not float64 end to end. Two runs:
 * <ul>
 *   <li>float32, the product's CPU path (weights, operator build, injection, generation in float32): logits within
 *       {@value #TOL32} x max|logit| (float32 round-off over a few layers, observed up to 1.5e-6);</li>
 *   <li>float64 weights, the operator built in float64 and rounded to float32 when stored, injection in float64: within
 *       {@value #TOL64} x max|logit|, what the operator's float32 rounding allows (observed up to 1.3e-8).</li>
 * </ul>
 * The greedy margins of the fixtures are 6e-3 or more, far above both tolerances, so the ids must agree exactly.
 */
class SteeringFixtureTest {

    static final Path DIR = Path.of("src", "test", "resources", "reference", "detached");
    static final double TOL32 = 2e-5;
    static final double TOL64 = 1e-6;

    static Stream<Arguments> runs() throws IOException {
        JsonNode index = new ObjectMapper().readTree(DIR.resolve("index.json").toFile());
        List<Arguments> out = new ArrayList<>();
        for (JsonNode s : index.get("steering")) {
            for (DataType dt : new DataType[] {DataType.FLOAT32, DataType.FLOAT64}) {
                out.add(Arguments.of(s.get("file").asText(), dt, s));
            }
        }
        return out.stream();
    }

    static long[] ids(JsonNode node) {
        long[] ids = new long[node.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = node.get(i).asLong();
        }
        return ids;
    }

    static Path folder(String modelPath) {
        String shared = "../shared/models/";
        return modelPath.startsWith(shared) ? SharedModels.require(modelPath.substring(shared.length()))
                : Path.of(modelPath);
    }

    /** Last-position logits in float64 after feeding {@code ids} through the cache (the float64 twin of lastLogits). */
    static double[] lastLogits64(Transformer tf, NDManager m, long[] ids, KvCache cache, Hooks hooks) {
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray hidden = tf.forward(m.create(ids, new Shape(1, ids.length)), cache, hooks);
            NDArray last = hidden.get(new NDIndex(":, -1, :"));
            return tf.logits(last).toType(DataType.FLOAT64, false).toDoubleArray();
        }
    }

    static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    @ParameterizedTest(name = "{0} in {1}")
    @MethodSource("runs")
    void cachedSteeringGivesTheLogitsOfTheReencodingReference(String file, DataType dtype, JsonNode spec)
            throws IOException {
        SafetensorsTestReader.Tensor ref = SafetensorsTestReader.readFile(DIR.resolve(file)).get("logits");
        int steps = spec.get("steps").asInt();
        int vocab = ref.dim(1);
        long[] text = ids(spec.get("text"));
        long[] want = ids(spec.get("greedy"));
        double strength = spec.get("strength").asDouble();
        double tolerance = dtype == DataType.FLOAT64 ? TOL64 : TOL32;
        double scale = spec.get("maxAbsLogit").asDouble();
        try (LanguageModel model = LanguageModel.load(folder(spec.get("modelPath").asText()), Device.cpu(), dtype)) {
            // as the app builds an operator: in the model's dtype, stored as float32
            SteeringOperator op = OperatorBuilder.full(model, ids(spec.get("concept")), spec.get("layer").asInt(),
                    model.dataType(), r -> { });
            Transformer tf = model.decoder();
            long[] got = new long[steps];
            double worst = 0;
            try (NDManager m = model.manager().newSubManager();
                 KvCache cache = new KvCache(m, tf.config(), 1, text.length + steps, tf.dataType())) {
                Injector injector = new Injector(op, strength, m, dtype);
                Hooks hooks = injector.hooks();
                long[] feed = text;
                for (int step = 0; step < steps; step++) {
                    double[] logits = dtype == DataType.FLOAT64 ? lastLogits64(tf, m, feed, cache, hooks)
                            : widen(Generator.lastLogits(tf, m, feed, cache, hooks));
                    double[] reference = Arrays.copyOfRange(ref.data(), step * vocab, (step + 1) * vocab);
                    for (int v = 0; v < vocab; v++) {
                        worst = Math.max(worst, Math.abs(logits[v] - reference[v]) / scale);
                    }
                    got[step] = argmax(logits);
                    feed = new long[] {got[step]};
                }
            }
            System.out.printf("%s %s: steered logits within %.2e x max|logit| (%.2f) of the reference; ids %s%n",
                    file, dtype, worst, scale, Arrays.toString(got));
            assertTrue(worst <= tolerance, file + " " + dtype + ": steered logits differ by " + worst
                    + " x max|logit| from the re-encoding reference");
            assertEquals(Arrays.toString(want), Arrays.toString(got), file + " " + dtype + ": greedy ids");
        }
    }
}
