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
import lab.steering.service.SteeringService;

/**
 * /steer: normal and steered continuations side by side (rendered when both are done; no streaming yet), the first
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
        @FormParam("conceptPrompt") public String conceptPrompt;
        @FormParam("contrastPrompt") public String contrastPrompt;
        @FormParam("prompt") public String prompt;
        @FormParam("strength") public String strength;
        @FormParam("layer") public String layer;
        @FormParam("maxNewTokens") public String maxNewTokens;
        @FormParam("seed") public String seed;

        static Form defaults() {
            Form f = new Form();
            f.source = "operator";
            f.prompt = "Once upon a time";
            f.strength = "4";
            f.maxNewTokens = "24";
            f.conceptPrompt = "The dog barked at the cat in the garden";
            return f;
        }

        /** The fields of the options row, whose errors show under it. */
        public List<String> rowFields() {
            return List.of("strength", "layer", "maxNewTokens", "seed", "temperature", "topK", "topP");
        }

        public boolean vector() {
            return "vector".equals(source);
        }

        public boolean selected(String id, boolean isDefault) {
            return model == null || model.isBlank() ? isDefault : model.equals(id);
        }

        public boolean operatorSelected(long id) {
            return Long.toString(id).equals(operatorId);
        }

        SteeringRequests.Steer request() {
            Long op = vector() ? null : Forms.longValue(operatorId, "operatorId");
            SteeringRequests.Vector v = vector() ? new SteeringRequests.Vector(conceptPrompt,
                    Forms.blankToNull(contrastPrompt)) : null;
            return new SteeringRequests.Steer(Forms.blankToNull(model), op, v, prompt, Forms.number(strength, "strength"),
                    Forms.integer(layer, "layer"), Forms.integer(maxNewTokens, "maxNewTokens"), 0.0, null, null,
                    Forms.longValue(seed, "seed"));
        }
    }

    /** An operator in the picker. */
    public record Choice(long id, String name, String model, int layer, String form) {
    }

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<ModelsResource.ModelInfo> models, List<Choice> operators, Form form,
                                             FormErrors err, Comparison cmp);

        static native TemplateInstance index$panel(List<ModelsResource.ModelInfo> models, List<Choice> operators,
                                                   Form form, FormErrors err, Comparison cmp);
    }

    @Inject
    ModelsResource models;
    @Inject
    OperatorsResource operators;
    @Inject
    SteerResource steer;

    List<Choice> choices() {
        try {
            return operators.list(null, null, 200).stream()
                    .map(o -> new Choice(o.id(), o.name(), o.model(), o.layer(), o.form())).toList();
        } catch (RuntimeException e) {
            FormErrors.of(e); // the database may be down: steer with a vector still works
            return List.of();
        }
    }

    @GET
    public TemplateInstance page(@QueryParam("operator") String operatorId) {
        Form f = Form.defaults();
        f.operatorId = operatorId;
        List<Choice> ops = choices();
        if (ops.isEmpty()) {
            f.source = "vector";
        }
        return Templates.index(models.list(), ops, f, FormErrors.NONE, null);
    }

    @POST
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public TemplateInstance submit(@BeanParam Form form, @Context HttpHeaders headers) {
        Comparison cmp = null;
        FormErrors err = FormErrors.NONE;
        try {
            SteeringService.SteerResult r = steer.steer(form.request());
            cmp = Comparison.of(r.runId(), r.model(), r.kind(), r.operatorId(), r.conceptPrompt(), form.prompt,
                    r.layer(), r.strength(), r.normal(), r.steered(), r.diagnostics());
        } catch (RuntimeException e) {
            err = FormErrors.of(e);
            if ("vector.conceptPrompt".equals(err.field())) {
                err = new FormErrors("conceptPrompt", err.code(), err.message());
            }
        }
        return Forms.htmx(headers) ? Templates.index$panel(models.list(), choices(), form, err, cmp)
                : Templates.index(models.list(), choices(), form, err, cmp);
    }
}
