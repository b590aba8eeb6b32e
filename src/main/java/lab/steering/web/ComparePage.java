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
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import lab.steering.service.Refusal;
import lab.steering.service.comparison.CompareRequest;
import lab.steering.service.comparison.ComparisonService;

/**
 * /compare: the architecture comparison. The form submits a batch (POST /compare) and goes to the comparison's own
 * page, /compare/{id} (bookmarkable: it is stored), which polls its fragment (GET /compare/{id}/status) every second
 * while the job runs, then shows the per-model distributions of stable rank and one prompt's decoded singular
 * vectors side by side ({@code ?p=N} picks the prompt).
 */
@Path("/compare")
@Produces(MediaType.TEXT_HTML)
public class ComparePage {

    /** The form's fields as typed. */
    public static class Form {
        @FormParam("models") public List<String> models;
        @FormParam("prompts") public String prompts;
        @FormParam("batch") public String batch;
        @FormParam("dtype") public String dtype;
        @FormParam("topK") public String topK;
        @FormParam("vectors") public String vectors;

        static Form defaults() {
            Form f = new Form();
            f.models = List.of();
            f.prompts = "";
            f.batch = "default";
            f.dtype = "float32";
            f.topK = "8";
            f.vectors = "3";
            return f;
        }

        public boolean checked(String id) {
            return models != null && models.contains(id);
        }

        public boolean defaultBatch() {
            return !"given".equals(batch);
        }

        CompareRequest request() {
            var node = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance;
            com.fasterxml.jackson.databind.JsonNode list;
            if (defaultBatch()) {
                list = node.textNode("default");
            } else {
                var arr = node.arrayNode();
                if (prompts != null) {
                    prompts.lines().map(String::strip).filter(s -> !s.isEmpty()).forEach(arr::add);
                }
                if (arr.isEmpty()) {
                    throw Refusal.invalidField("prompts", "write one prompt per line, or choose the 100 everyday"
                            + " phrases");
                }
                list = arr;
            }
            return new CompareRequest(models == null ? List.of() : models.stream().filter(s -> !s.isBlank()).toList(),
                    null, list, Forms.blankToNull(dtype), Forms.integer(topK, "topK"), Forms.integer(vectors, "vectors"));
        }
    }

    /** A comparison as the page draws it: the charts, and the prompt whose decoded vectors are shown. */
    public record PageView(ComparisonService.View v, Charts.Chart combinedRanks, Charts.Chart lastRanks,
                           Charts.Chart spectra, ComparisonService.PromptRow row, int percent, boolean finished) {

        static PageView of(ComparisonService.View v, int selected) {
            int percent = (int) Math.round(v.progress() * 100);
            boolean finished = !v.status().equals("queued") && !v.status().equals("running");
            List<String> names = new ArrayList<>();
            List<double[]> combined = new ArrayList<>();
            List<double[]> last = new ArrayList<>();
            List<int[]> indices = new ArrayList<>();
            List<double[]> shapes = new ArrayList<>();
            for (int m = 0; m < v.models().size(); m++) {
                names.add(v.models().get(m).model().id());
                List<Double> c = new ArrayList<>();
                List<Double> l = new ArrayList<>();
                List<Integer> idx = new ArrayList<>();
                for (ComparisonService.PromptRow row : v.prompts()) {
                    ComparisonService.Entry e = row.results().get(m);
                    if (e != null) {
                        c.add(e.combined().stableRank());
                        l.add(e.lastToken().stableRank());
                        idx.add(row.index());
                    }
                }
                combined.add(c.stream().mapToDouble(Double::doubleValue).toArray());
                last.add(l.stream().mapToDouble(Double::doubleValue).toArray());
                indices.add(idx.stream().mapToInt(Integer::intValue).toArray());
                shapes.add(v.models().get(m).meanRelativeSingularValues());
            }
            Charts.Chart cr = Charts.distribution(names, combined, indices, "model", "stable rank, combined [J₀ … J_T−1]");
            Charts.Chart lr = Charts.distribution(names, last, indices, "model", "stable rank, last token J_T−1");
            Charts.Chart sp = Charts.lines(names, shapes, true, "singular value index", "mean σₖ / σ₁ (log)");
            int p = Math.max(0, Math.min(v.prompts().size() - 1, selected));
            return new PageView(v, cr, lr, sp, v.prompts().isEmpty() ? null : v.prompts().get(p), percent, finished);
        }
    }

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<ModelViews.ModelInfo> models, Form form, FormErrors err,
                                             List<ComparisonService.Listed> recent, String recentError);

        static native TemplateInstance index$form(List<ModelViews.ModelInfo> models, Form form, FormErrors err);

        static native TemplateInstance one(PageView page, String error);

        static native TemplateInstance one$result(PageView page);
    }

    @Inject
    ModelViews models;
    @Inject
    ComparisonService service;

    @GET
    public TemplateInstance page() {
        return index(Form.defaults(), FormErrors.NONE);
    }

    private TemplateInstance index(Form form, FormErrors err) {
        List<ComparisonService.Listed> recent = List.of();
        String recentError = null;
        try {
            recent = service.list(20);
        } catch (RuntimeException e) {
            recentError = FormErrors.of(e).message();
        }
        return Templates.index(models.choices(), form, err, recent, recentError);
    }

    @POST
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public Response submit(@BeanParam Form form, @Context HttpHeaders headers) {
        try {
            ComparisonService.View v = service.submit(service.plan(form.request()));
            String to = "/compare/" + v.id();
            return Forms.htmx(headers) ? Response.ok().header("HX-Redirect", to).build()
                    : Response.seeOther(URI.create(to)).build();
        } catch (RuntimeException e) {
            FormErrors err = FormErrors.of(e);
            return Response.ok(Forms.htmx(headers) ? Templates.index$form(models.choices(), form, err)
                    : index(form, err)).build();
        }
    }

    @GET
    @Path("{id}")
    public Response one(@PathParam("id") String id, @QueryParam("p") String p) {
        Optional<ComparisonService.View> v = find(id);
        if (v.isEmpty()) {
            return Response.status(404).entity(Templates.one(null, "comparison " + id + " does not exist")).build();
        }
        return Response.ok(Templates.one(PageView.of(v.get(), selected(p)), null)).build();
    }

    /** The result fragment (polled while the job runs). */
    @GET
    @Path("{id}/status")
    public Response status(@PathParam("id") String id, @QueryParam("p") String p) {
        return find(id).map(v -> Response.ok(Templates.one$result(PageView.of(v, selected(p)))).build())
                // 200, not 404: htmx swaps only 2xx answers, and the swap is what stops the polling
                .orElseGet(() -> Response.ok("<div id=\"result\"><p class=\"error\" role=\"alert\">comparison not"
                        + " found</p></div>").build());
    }

    @POST
    @Path("{id}/cancel")
    public Response cancel(@PathParam("id") String id) {
        try {
            service.cancel(Forms.id(id, "a comparison"));
        } catch (Refusal e) {
            // an id that is not a number: the status fragment says it does not exist
        }
        return status(id, null);
    }

    private Optional<ComparisonService.View> find(String id) {
        try {
            return service.get(Forms.id(id, "a comparison"));
        } catch (Refusal e) {
            return Optional.empty();
        }
    }

    private static int selected(String p) {
        try {
            return p == null ? 0 : Integer.parseInt(p.trim());
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
