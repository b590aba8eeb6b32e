package lab.steering.service.analysis;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import lab.steering.config.LabConfig;
import lab.steering.jacobian.Analysis;
import lab.steering.jacobian.JacobianEngine;
import lab.steering.jacobian.JacobianStack;
import lab.steering.jacobian.Target;
import lab.steering.jacobian.TokenDecoder;
import lab.steering.model.LanguageModel;
import lab.steering.model.SafetensorsWriter;
import lab.steering.service.device.DevicePolicy;
import lab.steering.service.jobs.WorkLimiter;
import lab.steering.service.models.DeviceStatus;
import lab.steering.service.models.ModelRegistry;

/**
 * Detached-Jacobian analyses and exports of validated requests, run through the {@link WorkLimiter}. Keeps one
 * {@link TokenDecoder} per loaded model (its caches are plain arrays; dropped when the model is unloaded).
 */
@ApplicationScoped
public class JacobianService {

    @Inject
    LabConfig config;
    @Inject
    WorkLimiter limiter;
    @Inject
    ObjectMapper json;
    @Inject
    DeviceStatus device;

    private final Map<String, TokenDecoder> decoders = new ConcurrentHashMap<>();

    /**
     * A validated request.
     *
     * @param exportTarget what the export writes (the model output unless one layer was named)
     */
    public record Request(LanguageModel model, String prompt, long[] ids, Analysis.Options options,
                         Target exportTarget) {
    }

    /**
     * Rough cost of a request, and what makes it too large.
     *
     * @param limitedBy          what set the limit (lab.jacobian.max-bytes, or a GPU's free memory)
     * @param deviceFreeMegabytes the GPU's free memory when it was checked, null on the CPU
     */
    public record Cost(double megabytes, double seconds, double limitMegabytes, String limitedBy,
                       Double deviceFreeMegabytes) {
        public boolean tooLarge() {
            return megabytes > limitMegabytes;
        }
    }

    /** A safetensors file ready to be written to a response (the arrays are plain Java, the tensors long gone). */
    public record Export(String filename, SafetensorsWriter file) {
    }

    public Analysis.Options options(Analysis.Method method, DataType dtype, int topK, int[] layers, Target.Mode mode,
                                    Target.Component component, boolean bothSigns) {
        return new Analysis.Options(method, dtype, topK, layers, mode, component, bothSigns,
                config.jacobian().chunkBytes().asLongValue());
    }

    /**
     * The estimate of a request: its memory, and its time as its floating-point work over a throughput: the one the
     * latest analyses of this model with this method achieved ({@link #run} measures it), else lab.jacobian.gflops.
     */
    public Cost cost(LanguageModel model, int tokens, Analysis.Options options, boolean export) {
        Analysis.Estimate e = Analysis.estimate(model.config(), tokens, options.dtype(), options, export);
        DevicePolicy.Budget b = device.budget(); // on a GPU: also bounded by its free memory now
        return new Cost(e.megabytes(), e.flops() / (gflops(model, options, export) * 1e9),
                b.limitBytes() / (1024.0 * 1024.0), b.limitedBy(),
                b.device() == null ? null : b.device().freeBytes() / (1024.0 * 1024.0));
    }

    /**
     * The method for "auto": of the candidates (null: over that method's token limit), those whose memory estimate
     * fits; of two, the full method where the matrix-free one would complete its basis at once (it then computes the
     * same stack, and the full method adds the ordinary Jacobian's contrast) or is not estimated to need under 4/5 of
     * the full method's floating-point work, the ordinary Jacobian left out of that comparison; else the matrix-free
     * one. FLOPs, not seconds: the two methods' measured throughputs need not both be known yet. When neither fits,
     * the low-rank one if allowed (its refusal then names the smaller need), else the full one.
     */
    public Analysis.Options choose(LanguageModel model, int tokens, Analysis.Options full, Analysis.Options lowRank) {
        boolean fullFits = full != null && !cost(model, tokens, full, false).tooLarge();
        boolean lowFits = lowRank != null && !cost(model, tokens, lowRank, false).tooLarge();
        if (fullFits && lowFits) {
            if (Analysis.lowRankCompletesAtOnce(model.config(), tokens, lowRank)) {
                return full;
            }
            double f = Analysis.estimate(model.config(), tokens, full.dtype(), full.withoutOrdinary(), false).flops();
            double l = Analysis.estimate(model.config(), tokens, lowRank.dtype(), lowRank, false).flops();
            return f <= 1.25 * l ? full : lowRank;
        }
        if (fullFits) {
            return full;
        }
        return lowRank != null ? lowRank : full;
    }

    /** The full analysis, synchronously, through the limiter ({@link Busy} when it is full). */
    public Analysis.Result analyze(Request r) {
        return limiter.run(() -> run(r, Analysis.Progress.NONE));
    }

    /** The analysis itself, on the calling thread; {@code progress} may throw a CancellationException. */
    public Analysis.Result run(Request r, Analysis.Progress progress) {
        long t0 = System.nanoTime();
        Analysis.Result result = Analysis.run(r.model(), r.ids(), r.options(), decoder(r.model()),
                (stage, fraction) -> {
                    limiter.checkpoint();
                    progress.update(stage, fraction);
                });
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (seconds > 0.05) { // a measurement, not timer noise
            double flops = Analysis.estimate(r.model().config(), r.ids().length, r.options().dtype(), r.options(),
                    false).flops();
            throughput.merge(rateKey(r.model(), r.options(), false), flops / seconds / 1e9,
                    (old, now) -> 0.5 * old + 0.5 * now);
        }
        return result;
    }

    /** Measured GFLOP/s (of the estimate's FLOPs) by model, method and precision: the latest runs, averaged. */
    private final Map<String, Double> throughput = new ConcurrentHashMap<>();

    private double gflops(LanguageModel model, Analysis.Options o, boolean export) {
        return throughput.getOrDefault(rateKey(model, o, export), config.jacobian().gflops());
    }

    private static String rateKey(LanguageModel model, Analysis.Options o, boolean export) {
        return model.id() + "/" + (export ? "export" : o.method().apiName()) + "/" + o.dtype();
    }

    /** Drops the token decoder of a model being unloaded (a later use of the model makes another). */
    void onUnload(@jakarta.enterprise.event.Observes ModelRegistry.Unloaded e) {
        decoders.computeIfPresent(e.id(), (id, d) -> d.model() == e.model() ? null : d);
    }

    TokenDecoder decoder(LanguageModel model) {
        return decoders.compute(model.id(), (id, d) -> d != null && d.model() == model ? d : new TokenDecoder(model));
    }

    /**
     * The Jacobian stack of the export target as a safetensors file: {@code jacobian} [T, d, d] (dy_r / dx_i,k at
     * [i, r, k]), {@code embeddings} [T, d] (the inputs x_i), {@code output} [d] (y), and {@code constant} [d] only
     * where c is nonzero; F32 or F64 by the request's dtype. Runs through the limiter.
     */
    public Export export(Request r) {
        return limiter.run(() -> {
            Analysis.Options o = r.options();
            Target target = r.exportTarget();
            JacobianStack j = JacobianEngine.full(r.model(), r.ids(), o.dtype(), target, o.chunkBytes(),
                    rows -> limiter.checkpoint());
            int t = j.tokens();
            int d = j.dim();
            boolean f64 = o.dtype() == DataType.FLOAT64;
            SafetensorsWriter w = new SafetensorsWriter();
            add(w, "jacobian", f64, j.jacobian(), t, d, d);
            add(w, "embeddings", f64, j.inputs(), t, d);
            add(w, "output", f64, new double[][] {j.output()}, d);
            if (Arrays.stream(j.constant()).anyMatch(x -> x != 0)) {
                add(w, "constant", f64, new double[][] {j.constant()}, d);
            }
            Map<String, Object> tgt = new LinkedHashMap<>();
            tgt.put("layer", target.layer());
            tgt.put("mode", target.mode().name().toLowerCase());
            tgt.put("component", target.component().name().toLowerCase());
            tgt.put("isModelOutput", target.equals(Target.output(r.model().config().numLayers())));
            w.metadata("format", "steering-lab detached Jacobian: jacobian[i, r, k] = d output[r] / d embeddings[i, k];"
                            + " output = sum_i jacobian[i] @ embeddings[i] + constant")
                    .metadata("model", r.model().id())
                    .metadata("prompt", r.prompt())
                    .metadata("token_ids", write(j.ids()))
                    .metadata("dtype", j.dtype())
                    .metadata("target", write(tgt))
                    .metadata("inputs", target.mode() == Target.Mode.CUMULATIVE ? "input embeddings (hidden_states[0])"
                            : "residual entering decoder layer " + (target.layer() - 1) + " (hidden_states["
                            + (target.layer() - 1) + "])")
                    .metadata("relative_error", Double.toString(j.relativeError()));
            String name = "jacobian-" + r.model().id().replaceAll("[^A-Za-z0-9._-]", "_") + "-" + t + "tok-"
                    + (target.equals(Target.output(r.model().config().numLayers())) ? "output"
                    : "L" + target.layer() + "-" + tgt.get("mode") + "-" + tgt.get("component"))
                    + "-" + j.dtype() + ".safetensors";
            return new Export(name, w);
        });
    }

    /** Rows concatenated into one tensor, stored as F64 or F32 (float32 results convert back exactly). */
    private static void add(SafetensorsWriter w, String name, boolean f64, double[][] rows, long... shape) {
        int n = rows.length == 0 ? 0 : rows[0].length;
        if (f64) {
            double[] out = new double[rows.length * n];
            for (int i = 0; i < rows.length; i++) {
                System.arraycopy(rows[i], 0, out, i * n, n);
            }
            w.addF64(name, out, shape);
        } else {
            float[] out = new float[rows.length * n];
            for (int i = 0; i < rows.length; i++) {
                for (int k = 0; k < n; k++) {
                    out[i * n + k] = (float) rows[i][k];
                }
            }
            w.add(name, "F32", out, shape);
        }
    }

    private String write(Object o) {
        try {
            return json.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
