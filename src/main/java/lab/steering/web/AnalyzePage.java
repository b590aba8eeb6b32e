package lab.steering.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.TextNode;
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
import jakarta.ws.rs.core.StreamingOutput;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import lab.steering.jacobian.Analysis;
import lab.steering.service.Refusal;
import lab.steering.service.analysis.JacobianJobs;
import lab.steering.service.analysis.JacobianService;

/**
 * /analyze: a prompt's detached-Jacobian analysis. The form submits a job (POST /analyze); the job fragment polls
 * GET /analyze/jobs/{id} every 500 ms and is replaced by the results (reconstruction, spectra, stable ranks, decoded
 * singular vectors, layer sweep) when the job is done. /analyze?job=ID shows a job's page (bookmarkable while the
 * job is kept in the database, on any replica).
 */
@Path("/analyze")
@Produces(MediaType.TEXT_HTML)
public class AnalyzePage {

    /** The form's fields as typed (kept to re-render the form). */
    public static class Form {
        @FormParam("model") public String model;
        @FormParam("prompt") public String prompt;
        @FormParam("dtype") public String dtype;
        @FormParam("topK") public String topK;
        @FormParam("layers") public String layers;
        @FormParam("mode") public String mode;
        @FormParam("component") public String component;
        @FormParam("bothSigns") public String bothSigns;

        static Form defaults() {
            Form f = new Form();
            f.prompt = "Once upon a time, there was a little dog";
            f.dtype = "float32";
            f.topK = "8";
            f.layers = "auto";
            f.mode = "cumulative";
            f.component = "layer";
            f.bothSigns = "on";
            return f;
        }

        public boolean selected(String id, boolean isDefault) {
            return model == null || model.isBlank() ? isDefault : model.equals(id);
        }

        /** The bookmarkable address of this form's job {@code jobId} (see {@link AnalyzePage#page}). */
        public String address(String jobId) {
            return AnalyzePage.address(jobId, this);
        }

        public boolean signs() {
            return bothSigns != null && !bothSigns.isBlank();
        }

        JacobianRequest request() {
            return new JacobianRequest(Forms.blankToNull(model), prompt, Forms.blankToNull(dtype),
                    Forms.integer(topK, "topK"), "auto", layersNode(layers), Forms.blankToNull(mode),
                    Forms.blankToNull(component), signs());
        }

        /** "auto", "none", or layers separated by commas or spaces. */
        static JsonNode layersNode(String s) {
            if (s == null || s.isBlank()) {
                return null;
            }
            String t = s.trim();
            if (t.equalsIgnoreCase("auto") || t.equalsIgnoreCase("none")) {
                return TextNode.valueOf(t);
            }
            var arr = JsonNodeFactory.instance.arrayNode();
            for (String part : t.split("[,\\s]+")) {
                try {
                    arr.add(Integer.parseInt(part));
                } catch (NumberFormatException e) {
                    throw Refusal.invalidField("layers", "must be auto, none or a list of layer numbers, got '" + s + "'");
                }
            }
            return arr;
        }
    }

    /** The form's fields as query parameters (a bookmarked or shared address). */
    public static class Query {
        @QueryParam("model") public String model;
        @QueryParam("prompt") public String prompt;
        @QueryParam("dtype") public String dtype;
        @QueryParam("topK") public String topK;
        @QueryParam("layers") public String layers;
        @QueryParam("mode") public String mode;
        @QueryParam("component") public String component;
        @QueryParam("bothSigns") public String bothSigns;

        Form form() {
            Form f = Form.defaults();
            f.model = model;
            f.prompt = Forms.or(prompt, f.prompt);
            f.dtype = Forms.or(dtype, f.dtype);
            f.topK = Forms.or(topK, f.topK);
            f.layers = Forms.or(layers, f.layers);
            f.mode = Forms.or(mode, f.mode);
            f.component = Forms.or(component, f.component);
            f.bothSigns = prompt == null ? f.bothSigns : bothSigns; // a submitted form without the box: unchecked
            return f;
        }
    }

    /** The address of a submitted analysis: the job and the form's fields. */
    static String address(String jobId, Form f) {
        return "/analyze" + Forms.query("job", jobId, "model", f.model, "prompt", f.prompt, "dtype", f.dtype,
                "topK", f.topK, "layers", f.layers, "mode", f.mode, "component", f.component,
                "bothSigns", f.signs() ? "on" : null);
    }

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<ModelViews.ModelInfo> models, Form form, FormErrors err,
                                             JacobianJobs.View job, AnalysisView a);

        static native TemplateInstance index$panel(List<ModelViews.ModelInfo> models, Form form, FormErrors err,
                                                   JacobianJobs.View job, AnalysisView a);

        static native TemplateInstance index$job(Form form, JacobianJobs.View job, AnalysisView a);
    }

    @Inject
    ModelViews models;
    @Inject
    JacobianService service;
    @Inject
    lab.steering.service.analysis.AnalysisPlanner planner;
    @Inject
    JacobianJobs jobs;

    /** The form of each recent job (what the job page and the export button re-use), oldest dropped first. */
    private final java.util.Map<String, Form> forms = java.util.Collections.synchronizedMap(
            new java.util.LinkedHashMap<>() {
                @Override
                protected boolean removeEldestEntry(java.util.Map.Entry<String, Form> e) {
                    return size() > 200;
                }
            });

    /** The job's form as typed here, else (submitted on another replica) rebuilt from the stored request. */
    Form formOf(String jobId) {
        Form f = forms.get(jobId);
        if (f != null) {
            return f;
        }
        return jobs.request(jobId).map(e -> {
            JacobianJobs.Payload p = e.getValue();
            Form g = new Form();
            g.model = e.getKey();
            g.prompt = p.prompt();
            g.dtype = p.dtype();
            g.topK = Integer.toString(p.topK());
            g.layers = p.layers().length == 0 ? "none" : java.util.Arrays.stream(p.layers())
                    .mapToObj(Integer::toString).collect(java.util.stream.Collectors.joining(", "));
            g.mode = p.mode().toLowerCase(java.util.Locale.ROOT);
            g.component = p.component().toLowerCase(java.util.Locale.ROOT);
            g.bothSigns = p.bothSigns() ? "on" : null;
            return g;
        }).orElseGet(Form::defaults);
    }

    /**
     * The page; with {@code job} that job's progress or result (while it is kept in memory), else the form filled
     * from the query's fields (the address a submitted form pushes also carries them, so a bookmarked analysis whose
     * job was dropped still opens with its prompt and settings, one click from running again).
     */
    @GET
    public TemplateInstance page(@QueryParam("job") String jobId, @BeanParam Query query) {
        Optional<JacobianJobs.View> job = jobId == null ? Optional.empty() : jobs.get(jobId);
        Form form = jobId != null && forms.containsKey(jobId) ? formOf(jobId) : query.form();
        FormErrors err = FormErrors.NONE;
        if (jobId != null && job.isEmpty()) {
            err = new FormErrors(null, "unknown_job", "job '" + jobId + "' does not exist (or was dropped)"
                    + (query.prompt == null ? "" : "; the form below has its prompt and settings: analyze again"));
        }
        return Templates.index(models.choices(), form, err, job.orElse(null),
                job.map(AnalysisView::of).orElse(null));
    }

    @POST
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public Response submit(@BeanParam Form form, @Context HttpHeaders headers) {
        JacobianJobs.View job = null;
        FormErrors err = FormErrors.NONE;
        try {
            job = jobs.submit(planner.plan(form.request().spec(), false));
            forms.put(job.id(), form);
        } catch (RuntimeException e) {
            err = FormErrors.of(e);
        }
        AnalysisView a = job == null ? null : AnalysisView.of(job);
        TemplateInstance t = Forms.htmx(headers) ? Templates.index$panel(models.choices(), form, err, job, a)
                : Templates.index(models.choices(), form, err, job, a);
        Response.ResponseBuilder r = Response.status(err.any() ? 200 : 202).entity(t);
        if (job != null && Forms.htmx(headers)) {
            r.header("HX-Push-Url", address(job.id(), form));
        }
        return r.build();
    }

    @GET
    @Path("jobs/{id}")
    public Response job(@PathParam("id") String id) {
        return jobs.get(id).map(v -> Response.ok(Templates.index$job(formOf(id), v, AnalysisView.of(v))).build())
                // 200, not 404: htmx swaps only 2xx answers, and the swap is what stops the polling
                .orElseGet(() -> Response.ok().entity("<div id=\"job\"><p class=\"error\" role=\"alert\">job "
                        + "not found (it may have been dropped)</p></div>").build());
    }

    @POST
    @Path("jobs/{id}/cancel")
    public Response cancel(@PathParam("id") String id) {
        return job(jobs.cancel(id).map(JacobianJobs.View::id).orElse(id));
    }

    /** The Jacobian stack as a safetensors file (the same checks as POST /api/jacobian/export). */
    @POST
    @Path("export")
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    @Produces({MediaType.APPLICATION_OCTET_STREAM, MediaType.TEXT_PLAIN})
    public Response export(@BeanParam Form form) {
        try {
            JacobianService.Export e = service.export(planner.plan(
                    new JacobianRequest(Forms.blankToNull(form.model), form.prompt, Forms.blankToNull(form.dtype),
                            null, "auto", null, null, null, null).spec(), true));
            return Response.ok((StreamingOutput) out -> e.file().write(out), MediaType.APPLICATION_OCTET_STREAM_TYPE)
                    .header("Content-Disposition", "attachment; filename=\"" + e.filename() + "\"").build();
        } catch (RuntimeException e) {
            FormErrors err = FormErrors.of(e);
            return Response.status(400).type(MediaType.TEXT_PLAIN).entity(err.code() + ": " + err.message()).build();
        }
    }

    /**
     * The layer sweep as a layer-by-token grid: rows are the swept layers, columns the prompt's tokens; each cell is
     * J_{l,i}'s stable rank (the cell's colour, on a log scale from the grid's smallest to its largest value) and the
     * top token of its first left singular vector u_1 (and of -u_1 with both signs).
     */
    public record LayerGrid(List<Analysis.TokenInfo> tokens, List<GridRow> rows, double min, double max) {

        static LayerGrid of(Analysis.Result r) {
            if (r.layers() == null || r.layers().isEmpty() || r.layers().get(0).cells() == null) {
                return null;
            }
            double min = Double.POSITIVE_INFINITY;
            double max = 0;
            for (Analysis.Layer l : r.layers()) {
                for (Analysis.Cell c : l.cells()) {
                    min = Math.min(min, c.stableRank());
                    max = Math.max(max, c.stableRank());
                }
            }
            List<GridRow> rows = new ArrayList<>();
            for (Analysis.Layer l : r.layers()) {
                List<GridCell> cells = new ArrayList<>();
                for (Analysis.Cell c : l.cells()) {
                    cells.add(new GridCell(l.layer(), c, r.tokens().get(c.position()).text(), shade(c.stableRank(), min, max)));
                }
                rows.add(new GridRow(l.layer(), l.stableRank(), cells));
            }
            return new LayerGrid(r.tokens(), rows, min, max);
        }

        /** 0 at the smallest stable rank, 1 at the largest, on a log scale (stable ranks are >= 1). */
        static double shade(double value, double min, double max) {
            if (!(max > min) || !(min > 0)) {
                return 0;
            }
            return Math.max(0, Math.min(1, Math.log(value / min) / Math.log(max / min)));
        }

        /** A CSS colour for a shade: pale yellow (low stable rank) to deep orange-red (high). */
        public static String colour(double shade) {
            return String.format(java.util.Locale.ROOT, "hsl(%.0f, 85%%, %.0f%%)", 50 - 35 * shade, 92 - 34 * shade);
        }
    }

    public record GridRow(int layer, double stableRank, List<GridCell> cells) {
    }

    /** One cell with its token's text and its shade (0..1). */
    public record GridCell(int layer, Analysis.Cell cell, String token, double shade) {
        public String background() {
            return "background-color: " + LayerGrid.colour(shade);
        }

        /** The hover text: the token, u_1's top token(s), sigma_1 and the stable rank. */
        public String title() {
            StringBuilder b = new StringBuilder(String.format(java.util.Locale.ROOT,
                    "layer %d, token %d '%s': u1 -> '%s' (logit %.3g)", layer, cell.position(), token,
                    cell.top().token(), cell.top().score()));
            if (cell.negative() != null) {
                b.append(String.format(java.util.Locale.ROOT, ", -u1 -> '%s'", cell.negative().token()));
            }
            b.append(String.format(java.util.Locale.ROOT, "; sigma1 %.4g; stable rank %.3f", cell.sigma(),
                    cell.stableRank()));
            return b.toString();
        }
    }

    /** The charts and tables of a finished analysis. */
    public record AnalysisView(Analysis.Result r, Charts.Chart reconstruction, Charts.Chart scatter, Charts.Chart spectra,
                               Charts.Chart stableRanks, Charts.Chart layerRanks, LayerGrid grid, int percent) {

        static AnalysisView of(JacobianJobs.View job) {
            int percent = (int) Math.round(job.progress() * 100);
            Analysis.Result r = job.result();
            if (r == null) {
                return new AnalysisView(null, null, null, null, null, null, null, percent);
            }
            List<String> labels = new ArrayList<>();
            double[] errs;
            if (r.reconstruction().ordinaryRelError() != null) {
                labels.add("detached");
                labels.add("ordinary");
                errs = new double[]{r.reconstruction().detachedRelError(), r.reconstruction().ordinaryRelError()};
            } else {
                labels.add("detached");
                errs = new double[]{r.reconstruction().detachedRelError()};
            }
            Charts.Chart recon = Charts.bars(labels, errs, true, "Jacobian", "‖y − ΣJᵢxᵢ − c‖/‖y‖");
            Analysis.Reconstruction rc = r.reconstruction();
            Charts.Chart scatter = null;
            if (rc.output() != null && rc.linear() != null) {
                List<String> sn = new ArrayList<>(List.of("detached"));
                List<double[]> sv = new ArrayList<>(List.of(rc.linear()));
                if (rc.ordinary() != null) {
                    sn.add("ordinary");
                    sv.add(rc.ordinary());
                }
                scatter = Charts.scatter(rc.output(), sn, sv, "model output y (per coordinate)", "Σ Jᵢxᵢ + c");
            }
            List<String> names = new ArrayList<>();
            List<double[]> values = new ArrayList<>();
            List<String> tokenLabels = new ArrayList<>();
            double[] ranks = new double[r.perToken().size()];
            for (int i = 0; i < r.perToken().size(); i++) {
                Analysis.TokenSpectrum t = r.perToken().get(i);
                String name = t.position() + ":" + t.token();
                names.add(name);
                values.add(t.singularValues());
                tokenLabels.add(name);
                ranks[i] = t.stableRank();
            }
            Charts.Chart spectra = Charts.lines(names, values, true, "singular value index", "σ (log)");
            Charts.Chart sr = Charts.bars(tokenLabels, ranks, false, "token", "stable rank");
            Charts.Chart lr = null;
            if (r.layers() != null && !r.layers().isEmpty()) {
                List<String> ll = new ArrayList<>();
                double[] lv = new double[r.layers().size()];
                for (int i = 0; i < lv.length; i++) {
                    ll.add("L" + r.layers().get(i).layer());
                    lv[i] = r.layers().get(i).stableRank();
                }
                lr = Charts.bars(ll, lv, false, "layer", "stable rank");
            }
            return new AnalysisView(r, recon, scatter, spectra, sr, lr, LayerGrid.of(r), percent);
        }
    }
}
