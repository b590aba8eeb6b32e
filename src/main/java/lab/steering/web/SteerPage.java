package lab.steering.web;

import io.quarkus.qute.CheckedTemplate;
import io.quarkus.qute.TemplateInstance;
import jakarta.inject.Inject;
import jakarta.ws.rs.BeanParam;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.FormParam;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.service.steering.SteeringService;
import lab.steering.steer.SteeredRun;

/**
 * /steer: normal and steered continuations side by side (streamed token by token with server-sent events for htmx
 * requests, both sides growing together; rendered when both are done otherwise), the first
 * diverging token highlighted, per-token diagnostics on hover and in a table; every comparison is stored as a run
 * (POST /api/steer's checks and storage).
 */
@Path("/steer")
@Produces(MediaType.TEXT_HTML)
public class SteerPage {

    /** The form as typed. */
    public static class Form {
        @FormParam("model") public String model;
        @FormParam("source") public String source;
        @FormParam("operatorId") public String operatorId;
        /** A saved vector's id (source "savedVector"). */
        @FormParam("vectorId") public String vectorId;
        @FormParam("conceptPrompt") public String conceptPrompt;
        @FormParam("contrastPrompt") public String contrastPrompt;
        @FormParam("prompt") public String prompt;
        @FormParam("strength") public String strength;
        @FormParam("layer") public String layer;
        @FormParam("maxNewTokens") public String maxNewTokens;
        @FormParam("seed") public String seed;
        @FormParam("repetitionPenalty") public String repetitionPenalty;
        @FormParam("noRepeatNgramSize") public String noRepeatNgramSize;
        /** Stream the tokens (server-sent events) as they are generated; only for htmx requests. */
        @FormParam("stream") public String stream;

        static Form defaults() {
            Form f = new Form();
            f.source = "operator";
            f.prompt = "Once upon a time";
            f.strength = "4";
            f.maxNewTokens = "24";
            f.conceptPrompt = "The dog barked at the cat in the garden";
            f.stream = "on";
            return f;
        }

        /** The fields of the options row, whose errors show under it. */
        public List<String> rowFields() {
            return List.of("strength", "layer", "maxNewTokens", "seed", "temperature", "topK", "topP",
                    "repetitionPenalty", "noRepeatNgramSize");
        }

        public boolean streaming() {
            return stream != null && !stream.isBlank();
        }

        public boolean vector() {
            return "vector".equals(source);
        }

        public boolean savedVector() {
            return "savedVector".equals(source);
        }

        public boolean operator() {
            return !vector() && !savedVector();
        }

        public boolean vectorSelected(long id) {
            return Long.toString(id).equals(vectorId);
        }

        public boolean selected(String id, boolean isDefault) {
            return model == null || model.isBlank() ? isDefault : model.equals(id);
        }

        public boolean operatorSelected(long id) {
            return Long.toString(id).equals(operatorId);
        }

        SteeringRequests.Steer request() {
            Long op = operator() ? Forms.longValue(operatorId, "operatorId") : null;
            Long saved = savedVector() ? Forms.longValue(vectorId, "vectorId") : null;
            if (savedVector() && saved == null) {
                throw Refusal.invalidField("vectorId", "choose a saved vector");
            }
            SteeringRequests.Vector v = vector() ? new SteeringRequests.Vector(conceptPrompt,
                    Forms.blankToNull(contrastPrompt)) : null;
            return new SteeringRequests.Steer(Forms.blankToNull(model), op, saved, v, prompt, Forms.number(strength, "strength"),
                    Forms.integer(layer, "layer"), Forms.integer(maxNewTokens, "maxNewTokens"), 0.0, null, null,
                    Forms.longValue(seed, "seed"), Forms.number(repetitionPenalty, "repetitionPenalty"),
                    Forms.integer(noRepeatNgramSize, "noRepeatNgramSize"));
        }
    }

    /** An operator in the picker. */
    public record Choice(long id, String name, String model, int layer, String form) {
    }

    /** A saved vector in the picker. */
    public record VectorChoice(long id, String name, String model, String layers) {
    }

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index$panel(List<ModelViews.ModelInfo> models, List<Choice> operators,
                                                   List<VectorChoice> vectors, Form form, FormErrors err,
                                                   Comparison cmp, String streamId);

        static native TemplateInstance index(List<ModelViews.ModelInfo> models, List<Choice> operators,
                                             List<VectorChoice> vectors, Form form, FormErrors err, Comparison cmp,
                                             String streamId);

        static native TemplateInstance tok(String text, int index, boolean diverged, String title);

        static native TemplateInstance result(Comparison cmp, FormErrors err);
    }

    /** A checked request waiting for its event stream (GET /steer/stream/{id}), with the prompt to show. */
    record Pending(SteeringService.SteerSpec spec, String prompt) {
    }

    private final java.util.Map<String, Pending> pending = new java.util.concurrent.ConcurrentHashMap<>();

    @Inject
    SteeringService steering;
    @Inject
    lab.steering.config.LabConfig config;
    @Inject
    org.eclipse.microprofile.context.ManagedExecutor executor;

    @Inject
    ModelViews models;
    @Inject
    lab.steering.service.models.ModelRegistry registry;
    @Inject
    lab.steering.service.steering.VectorService vectorService;
    @Inject
    lab.steering.service.steering.OperatorService operatorService;

    List<Choice> choices() {
        try {
            return operatorService.search(null, null, 200).stream()
                    .map(o -> new Choice(o.id, o.name, o.modelId, o.layer, o.form)).toList();
        } catch (RuntimeException e) {
            FormErrors.of(e); // the database may be down: steer with a vector still works
            return List.of();
        }
    }

    List<VectorChoice> vectorChoices() {
        try {
            return vectorService.search(null, null, 200).stream().map(v -> new VectorChoice(v.id, v.name, v.modelId,
                    java.util.Arrays.toString(v.layers))).toList();
        } catch (RuntimeException e) {
            FormErrors.of(e); // the database may be down: steer with a vector built for the request still works
            return List.of();
        }
    }

    /**
     * The form, filled from the query when it names fields (the address a submitted form pushes: a steering set-up
     * can be bookmarked and shared; {@code operator} is the operator's id).
     */
    @GET
    public TemplateInstance page(@QueryParam("operator") String operatorId, @QueryParam("vector") String vectorId,
                                 @QueryParam("model") String model,
                                 @QueryParam("source") String source, @QueryParam("conceptPrompt") String concept,
                                 @QueryParam("contrastPrompt") String contrast, @QueryParam("prompt") String prompt,
                                 @QueryParam("strength") String strength, @QueryParam("layer") String layer,
                                 @QueryParam("maxNewTokens") String maxNewTokens, @QueryParam("seed") String seed,
                                 @QueryParam("repetitionPenalty") String repetitionPenalty,
                                 @QueryParam("noRepeatNgramSize") String noRepeatNgramSize) {
        Form f = Form.defaults();
        f.operatorId = operatorId;
        f.vectorId = vectorId;
        f.model = model;
        f.repetitionPenalty = repetitionPenalty;
        f.noRepeatNgramSize = noRepeatNgramSize;
        f.conceptPrompt = Forms.or(concept, f.conceptPrompt);
        f.contrastPrompt = contrast;
        f.prompt = Forms.or(prompt, f.prompt);
        f.strength = Forms.or(strength, f.strength);
        f.layer = layer;
        f.maxNewTokens = Forms.or(maxNewTokens, f.maxNewTokens);
        f.seed = seed;
        List<Choice> ops = choices();
        f.source = "savedVector".equals(source) || source == null && vectorId != null ? "savedVector"
                : "vector".equals(source) || ops.isEmpty() && !"operator".equals(source) ? "vector" : "operator";
        return Templates.index(models.choices(), ops, vectorChoices(), f, FormErrors.NONE, null, null);
    }

    /** The address of the form as submitted (see {@link #page}). */
    static String address(Form f) {
        return "/steer" + Forms.query("model", f.model, "source", f.source,
                "operator", f.operator() ? f.operatorId : null, "vector", f.savedVector() ? f.vectorId : null,
                "conceptPrompt", f.vector() ? f.conceptPrompt : null, "contrastPrompt", f.vector() ? f.contrastPrompt : null,
                "prompt", f.prompt, "strength", f.strength, "layer", f.layer, "maxNewTokens", f.maxNewTokens,
                "seed", f.seed, "repetitionPenalty", f.repetitionPenalty, "noRepeatNgramSize", f.noRepeatNgramSize);
    }

    @POST
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public jakarta.ws.rs.core.Response submit(@BeanParam Form form, @Context HttpHeaders headers) {
        Comparison cmp = null;
        FormErrors err = FormErrors.NONE;
        String streamId = null;
        boolean htmx = Forms.htmx(headers);
        try {
            SteeringService.SteerSpec spec = SteeringRequests.steer(form.request(), config.maxNewTokens());
            if (htmx && form.streaming()) {
                precheck(spec);
                streamId = java.util.UUID.randomUUID().toString();
                pending.put(streamId, new Pending(spec, form.prompt));
            } else {
                SteeringService.SteerResult r = steering.steer(spec);
                cmp = comparison(r, form.prompt);
            }
        } catch (RuntimeException e) {
            err = fieldOf(FormErrors.of(e));
        }
        TemplateInstance t = htmx
                ? Templates.index$panel(models.choices(), choices(), vectorChoices(), form, err, cmp, streamId)
                : Templates.index(models.choices(), choices(), vectorChoices(), form, err, cmp, streamId);
        jakarta.ws.rs.core.Response.ResponseBuilder r = jakarta.ws.rs.core.Response.ok(t);
        if (htmx && !err.any()) {
            r.header("HX-Push-Url", address(form));
        }
        return r.build();
    }

    /**
     * The service's checks (model, operator and its fingerprint, layer, prompt length) before a stream starts, so
     * that a refusal shows as the non-streaming form shows it, above the form or at its field.
     */
    void precheck(SteeringService.SteerSpec spec) {
        lab.steering.model.LanguageModel model;
        int dflt;
        if (spec.operatorId() != null) {
            var record = operatorService.record(spec.operatorId());
            model = operatorService.modelFor(record, spec.model());
            dflt = record.layer;
        } else if (spec.vectorId() != null) {
            var record = vectorService.record(spec.vectorId());
            model = vectorService.modelFor(record, spec.model());
            dflt = record.layers[0];
        } else {
            model = steering.resolve(spec.model());
            dflt = lab.steering.steer.OperatorBuilder.defaultLayer(model.config().numLayers());
        }
        SteeringService.checkLayer(model, spec.layer(), dflt);
        SteeringService.promptIds(model, spec.prompt(), "prompt");
    }

    static FormErrors fieldOf(FormErrors err) {
        if ("vector.conceptPrompt".equals(err.field())) {
            return new FormErrors("conceptPrompt", err.code(), err.message());
        }
        return err;
    }

    static Comparison comparison(SteeringService.SteerResult r, String prompt) {
        return Comparison.of(r.runId(), r.model(), r.kind(), r.operatorId(), r.conceptPrompt(), prompt, r.layer(),
                r.strength(), r.normal(), r.steered(), r.diagnostics());
    }

    /**
     * The live view's events of one stream. The service decodes both continuations in lockstep (normal token k,
     * then steered token k); normal token k is held until steered token k exists, so that both are sent knowing
     * whether they lie at or after the first difference (highlighted as in the final comparison). A steered token
     * carries its diagnostics as its hover title.
     */
    static final class LiveTokens {
        private final java.util.function.BiConsumer<String, String> emit;
        private final List<Long> normalIds = new java.util.ArrayList<>();
        private SteeredRun.Step heldNormal;
        private int divergeAt = -1;

        LiveTokens(java.util.function.BiConsumer<String, String> emit) {
            this.emit = emit;
        }

        synchronized void accept(boolean steered, SteeredRun.Step step) {
            if (!steered) {
                flush(); // the steered run stopped before this index: the previous normal token has no partner
                normalIds.add(step.id());
                heldNormal = step;
                return;
            }
            int k = step.index();
            if (divergeAt < 0 && (k >= normalIds.size() || normalIds.get(k) != step.id())) {
                divergeAt = k;
            }
            if (heldNormal != null) {
                send("normal", heldNormal, null);
                heldNormal = null;
            }
            send("steered", step, new Comparison.Tok(k, step.text(), divergeAt >= 0 && k >= divergeAt, step).summary());
        }

        /** Sends a held normal token: its steered partner never came, so the continuations differ from here. */
        synchronized void flush() {
            if (heldNormal != null) {
                if (divergeAt < 0) {
                    divergeAt = heldNormal.index();
                }
                send("normal", heldNormal, null);
                heldNormal = null;
            }
        }

        private void send(String side, SteeredRun.Step step, String title) {
            boolean diverged = divergeAt >= 0 && step.index() >= divergeAt;
            emit.accept(side, Templates.tok(step.text(), step.index(), diverged, title).render());
        }
    }

    /**
     * The continuations as server-sent events: "normal" and "steered" carry one token's HTML each, the two sides
     * interleaved as they are generated in lockstep (see {@link LiveTokens}); "done" the whole comparison (with the
     * run link and diagnostics), which replaces the live view.
     */
    @GET
    @Path("stream/{id}")
    @Produces(MediaType.SERVER_SENT_EVENTS)
    public io.smallrye.mutiny.Multi<jakarta.ws.rs.sse.OutboundSseEvent> stream(@jakarta.ws.rs.PathParam("id") String id,
                                                                              @Context jakarta.ws.rs.sse.Sse sse) {
        Pending p = pending.remove(id);
        return io.smallrye.mutiny.Multi.createFrom().emitter(em -> {
            if (p == null) {
                em.emit(event(sse, "done", Templates.result(null, new FormErrors(null, "unknown_stream",
                        "this steering request was already shown or has expired; steer again")).render()));
                em.complete();
                return;
            }
            executor.execute(() -> {
                // the models it finds stay loaded until it ends (its request may have ended before)
                try (var scope = registry.openScope(List.of())) {
                    LiveTokens live = new LiveTokens((side, html) -> em.emit(event(sse, side, html)));
                    SteeringService.SteerResult r = steering.steer(p.spec(), live::accept);
                    live.flush();
                    em.emit(event(sse, "done", Templates.result(comparison(r, p.prompt()), FormErrors.NONE).render()));
                } catch (RuntimeException e) {
                    FormErrors err;
                    try {
                        err = FormErrors.of(e);
                    } catch (RuntimeException bug) {
                        err = new FormErrors(null, "internal", "internal error: " + bug.getClass().getSimpleName());
                    }
                    em.emit(event(sse, "done", Templates.result(null, err).render()));
                }
                em.complete();
            });
        });
    }

    private static jakarta.ws.rs.sse.OutboundSseEvent event(jakarta.ws.rs.sse.Sse sse, String name, String html) {
        return sse.newEventBuilder().name(name).data(html).build();
    }
}
