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
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.steer.OperatorBuilder;
import org.jboss.resteasy.reactive.RestForm;
import org.jboss.resteasy.reactive.multipart.FileUpload;

/**
 * /operators: the library (filter by model and text, re-rendered as you type), building an operator from a concept
 * prompt, importing a file; /operators/{id}: one operator, rename / describe / tag, export, delete (confirmed).
 */
@Path("/operators")
@Produces(MediaType.TEXT_HTML)
public class OperatorsPage {

    /** The build form as typed. */
    public static class Form {
        @FormParam("name") public String name;
        @FormParam("model") public String model;
        @FormParam("conceptPrompt") public String conceptPrompt;
        @FormParam("layer") public String layer;
        @FormParam("form") public String form;
        @FormParam("rank") public String rank;
        @FormParam("energy") public String energy;
        @FormParam("description") public String description;
        @FormParam("tags") public String tags;

        static Form defaults() {
            Form f = new Form();
            f.name = "dog";
            f.conceptPrompt = "The dog barked at the cat in the garden";
            f.form = "full";
            return f;
        }

        public boolean selected(String id, boolean isDefault) {
            return model == null || model.isBlank() ? isDefault : model.equals(id);
        }

        /** The fields of the options row, whose errors show under it. */
        public List<String> rowFields() {
            return List.of("layer", "form", "rank", "energy");
        }

        public boolean lowRank() {
            return "lowrank".equals(form);
        }

        SteeringRequests.Build request() {
            return new SteeringRequests.Build(name, Forms.blankToNull(description), SteeringRequests.tags(tags),
                    Forms.blankToNull(model), conceptPrompt, Forms.integer(layer, "layer"), Forms.blankToNull(form),
                    lowRank() ? Forms.integer(rank, "rank") : null, lowRank() ? Forms.number(energy, "energy") : null);
        }
    }


    /** A layer in the picker; {@code dflt} marks 2L/3. */
    public record LayerOption(int layer, boolean dflt, boolean selected) {
    }

    /** A build job (in the database, run by any replica), as the page shows it while polling its progress. */
    public static final class BuildJob {
        private final String id;
        private final int percent;
        private final boolean done;
        private final LibraryViews.OperatorView created;
        private final FormErrors error;

        BuildJob(String id, int percent, boolean done, LibraryViews.OperatorView created, FormErrors error) {
            this.id = id;
            this.percent = percent;
            this.done = done;
            this.created = created;
            this.error = error;
        }

        public String id() {
            return id;
        }

        /** Rows of the concept's Jacobians done, of d (the operator's build after them is short). */
        public int percent() {
            return percent;
        }

        public boolean done() {
            return done;
        }

        public LibraryViews.OperatorView created() {
            return created;
        }

        public FormErrors error() {
            return error;
        }
    }

    /** The page's view of a build job. */
    BuildJob buildJob(lab.steering.store.JobStore.Job j) {
        String id = j.id().toString();
        if (!j.finished()) {
            return new BuildJob(id, (int) Math.min(99, Math.round(100 * j.progress())), false, null, FormErrors.NONE);
        }
        if (j.status().equals("done")) {
            try {
                return new BuildJob(id, 100, true, views.operator(operatorService.builtBy(j)), FormErrors.NONE);
            } catch (RuntimeException e) {
                return new BuildJob(id, 100, true, null, FormErrors.of(e));
            }
        }
        String code = j.status().equals("cancelled") ? "cancelled" : j.errorCode() == null ? "job_failed" : j.errorCode();
        String message = j.status().equals("cancelled") ? "the build was cancelled"
                : j.errorStatus() == null ? "the build failed: " + j.error() : j.error();
        return new BuildJob(id, 100, true, null, FormErrors.from(code, message));
    }

    @Inject
    lab.steering.service.steering.OperatorService operatorService;
    @Inject
    lab.steering.service.jobs.JobQueue jobs;

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<ModelViews.ModelInfo> models, List<LibraryItem> items,
                                             String model, String q, String kind, Form form, List<LayerOption> layers,
                                             FormErrors listErr, FormErrors err, FormErrors importErr,
                                             LibraryViews.OperatorView created, BuildJob job);

        static native TemplateInstance index$list(List<LibraryItem> items, FormErrors listErr);

        static native TemplateInstance index$build(List<ModelViews.ModelInfo> models, Form form,
                                                   List<LayerOption> layers, FormErrors err,
                                                   LibraryViews.OperatorView created, BuildJob job);

        static native TemplateInstance index$buildJob(BuildJob job);

        static native TemplateInstance index$layers(List<LayerOption> layers);

        static native TemplateInstance one(LibraryViews.OperatorView op, FormErrors err, String saved);
    }

    @Inject
    ModelViews models;
    @Inject
    LibraryViews views;

    List<LayerOption> layers(String modelId, String chosen) {
        List<ModelViews.ModelInfo> all = models.choices();
        ModelViews.ModelInfo m = all.stream().filter(i -> modelId == null || modelId.isBlank() ? i.isDefault()
                : i.id().equals(modelId)).findFirst().orElse(all.isEmpty() ? null : all.get(0));
        List<LayerOption> out = new ArrayList<>();
        if (m == null) {
            return out;
        }
        int dflt = OperatorBuilder.defaultLayer(m.layers());
        for (int l = 1; l <= m.layers(); l++) {
            boolean sel = chosen == null || chosen.isBlank() ? l == dflt : chosen.trim().equals(Integer.toString(l));
            out.add(new LayerOption(l, l == dflt, sel));
        }
        return out;
    }

    /**
     * A row of the library: an operator or a saved vector (kind "operator" or "vector").
     *
     * @param layers "3" for an operator, "3, 4, 5" for a vector of several layers
     * @param form   "full", "lowrank r=8", or "vector"
     */
    public record LibraryItem(String kind, long id, String name, String model, String conceptPrompt, String layers,
                              String form, List<String> tags, long sizeBytes, java.time.OffsetDateTime createdAt,
                              String href, String steerHref, String exportHref) {
        public boolean vector() {
            return kind.equals("vector");
        }
    }

    static LibraryItem item(LibraryViews.OperatorView o) {
        return new LibraryItem("operator", o.id(), o.name(), o.model(), o.conceptPrompt(), Integer.toString(o.layer()),
                o.rank() == null ? o.form() : o.form() + " r=" + o.rank(), o.tags(), o.sizeBytes(), o.createdAt(),
                "/operators/" + o.id(), "/steer?operator=" + o.id(), "/api/operators/" + o.id() + "/export");
    }

    static LibraryItem item(LibraryViews.VectorView v) {
        String layers = java.util.Arrays.stream(v.layers()).mapToObj(Integer::toString)
                .collect(java.util.stream.Collectors.joining(", "));
        String concept = v.conceptPrompt().isEmpty() ? "(imported control vector)" : v.conceptPrompt()
                + (v.contrastPrompt().isEmpty() ? "" : " − " + v.contrastPrompt());
        return new LibraryItem("vector", v.id(), v.name(), v.model(), concept, layers, "vector", v.tags(),
                v.sizeBytes(), v.createdAt(), "/api/vectors/" + v.id(), "/steer?source=savedVector&vector=" + v.id(),
                "/api/vectors/" + v.id() + "/export?format=gguf");
    }

    @Inject
    lab.steering.service.steering.VectorService vectors;

    /** Both kinds, newest first; {@code kind} "operator" or "vector" keeps one (blank: both). */
    List<LibraryItem> search(String model, String q, String kind) {
        String k = Forms.blankToNull(kind);
        if (k != null && !k.equals("operator") && !k.equals("vector")) {
            throw Refusal.invalidField("kind", "must be \"operator\" or \"vector\" (or empty for both), got \"" + k
                    + "\"");
        }
        List<LibraryItem> out = new ArrayList<>();
        if (k == null || k.equals("operator")) {
            operatorService.search(Forms.blankToNull(model), Forms.blankToNull(q), 200)
                    .forEach(o -> out.add(item(views.operator(o))));
        }
        if (k == null || k.equals("vector")) {
            vectors.search(Forms.blankToNull(model), Forms.blankToNull(q), 200)
                    .forEach(v -> out.add(item(views.vector(v))));
        }
        out.sort(java.util.Comparator.comparing(LibraryItem::createdAt).reversed());
        return out;
    }

    List<LibraryItem> search(String model, String q) {
        return search(model, q, null);
    }

    @GET
    public TemplateInstance page(@QueryParam("model") String model, @QueryParam("q") String q,
                                 @QueryParam("kind") String kind, @Context HttpHeaders headers) {
        List<LibraryItem> ops = List.of();
        FormErrors err = FormErrors.NONE;
        try {
            ops = search(model, q, kind);
        } catch (RuntimeException e) {
            err = FormErrors.of(e);
        }
        if (Forms.htmx(headers)) {
            return Templates.index$list(ops, err);
        }
        Form f = Form.defaults();
        return Templates.index(models.choices(), ops, model, q, kind, f, layers(null, null), err, FormErrors.NONE,
                FormErrors.NONE, null, null);
    }

    @GET
    @Path("layers")
    public TemplateInstance layerPicker(@QueryParam("model") String model) {
        return Templates.index$layers(layers(model, null));
    }

    @POST
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public Response build(@BeanParam Form form, @Context HttpHeaders headers) {
        if (Forms.htmx(headers)) {
            // htmx: checked now, built in the background; the form polls the job's progress
            BuildJob job = null;
            FormErrors err = FormErrors.NONE;
            try {
                job = buildJob(operatorService.submitBuild(
                        operatorService.plan(SteeringRequests.build(form.request())), null));
            } catch (RuntimeException e) {
                err = FormErrors.of(e);
            }
            return Response.ok(Templates.index$build(models.choices(), form, layers(form.model, form.layer), err, null,
                    job)).build();
        }
        LibraryViews.OperatorView created = null;
        FormErrors err = FormErrors.NONE;
        try {
            created = views.operator(operatorService.build(
                    operatorService.plan(SteeringRequests.build(form.request())), null).operator());
        } catch (RuntimeException e) {
            err = FormErrors.of(e);
        }
        if (created != null) {
            return Response.seeOther(URI.create("/operators/" + created.id())).build();
        }
        return Response.ok(Templates.index(models.choices(), search(null, null), null, null, null, form,
                layers(form.model, form.layer), FormErrors.NONE, err, FormErrors.NONE, null, null)).build();
    }

    /** A background build's progress; when it is done, its result (and the library is told to refresh). */
    @GET
    @Path("builds/{id}")
    public Response buildJob(@PathParam("id") String id) {
        BuildJob job = jobs.get(id, false).filter(j -> j.kind().equals(lab.steering.service.steering.OperatorService.BUILD_KIND))
                .map(j -> buildJob(j.finished() ? jobs.get(id, true).orElse(j) : j)).orElse(null);
        if (job == null) {
            return Response.ok("<div id=\"build-job\"><p class=\"error\" role=\"alert\">build not found (it may have"
                    + " been dropped)</p></div>").build();
        }
        Response.ResponseBuilder r = Response.ok(Templates.index$buildJob(job));
        if (job.done() && job.created() != null) {
            r.header("HX-Trigger", "operators-changed");
        }
        return r.build();
    }

    @POST
    @Path("import")
    @Consumes(MediaType.MULTIPART_FORM_DATA)
    public Response importFile(@RestForm("file") FileUpload file, @RestForm("model") String model,
                               @RestForm("name") String name, @RestForm("tags") String tags) {
        FormErrors err;
        try {
            if (file == null || file.size() == 0) {
                throw Refusal.invalidField("file", "choose an exported operator file");
            }
            byte[] data = Files.readAllBytes(file.uploadedFile());
            List<String> tagList = SteeringRequests.tags(Forms.blankToNull(tags));
            long created = operatorService.importFile(data, Forms.blankToNull(model), Forms.blankToNull(name), null,
                    tagList, null).id;
            return Response.seeOther(URI.create("/operators/" + created)).build();
        } catch (java.io.IOException e) {
            err = new FormErrors("file", "invalid_file", "file: cannot read the upload: " + e.getMessage());
        } catch (RuntimeException e) {
            err = FormErrors.of(e);
            if (err.field() == null && err.code() != null && err.code().contains("file")) {
                err = new FormErrors("file", err.code(), err.message());
            }
        }
        return Response.status(400).entity(Templates.index(models.choices(), search(null, null), null, null, null,
                Form.defaults(), layers(null, null), FormErrors.NONE, FormErrors.NONE, err, null, null)).build();
    }

    @GET
    @Path("{id}")
    public Response one(@PathParam("id") String id) {
        try {
            LibraryViews.OperatorView v = views.operator(operatorService.record(Forms.id(id, "an operator")));
            return Response.ok(Templates.one(v, FormErrors.NONE, null)).build();
        } catch (RuntimeException e) {
            FormErrors err = FormErrors.of(e).unfielded();
            int status = e instanceof Refusal a ? a.kind().status() : 404;
            return Response.status(status).entity(Templates.index(models.choices(), search(null, null), null, null, null,
                    Form.defaults(), layers(null, null), err, FormErrors.NONE, FormErrors.NONE, null, null)).build();
        }
    }

    /** Rename, describe, tag (PATCH's checks). */
    @POST
    @Path("{id}")
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public Response edit(@PathParam("id") String given, @FormParam("name") String name,
                         @FormParam("description") String description, @FormParam("tags") String tags) {
        long id = Forms.id(given, "an operator");
        try {
            List<String> tagList = tags == null ? null // absent: unchanged; blank: no tags
                    : java.util.Objects.requireNonNullElse(SteeringRequests.tags(tags), List.<String>of());
            LibraryViews.OperatorView v = views.operator(operatorService.patch(id, name, description, tagList));
            return Response.ok(Templates.one(v, FormErrors.NONE, "saved")).build();
        } catch (RuntimeException e) {
            FormErrors err = FormErrors.of(e);
            LibraryViews.OperatorView v = views.operator(operatorService.record(id));
            return Response.ok(Templates.one(v, err, null)).build();
        }
    }

    /** Delete (the page asks first, hx-confirm); back to the library. */
    @POST
    @Path("{id}/delete")
    public Response delete(@PathParam("id") String id, @Context HttpHeaders headers) {
        try {
            operatorService.delete(Forms.id(id, "an operator"));
        } catch (Refusal e) {
            if (e.kind() != Refusal.Kind.NOT_FOUND) {
                throw e;
            }
        }
        if (Forms.htmx(headers)) {
            return Response.ok().header("HX-Redirect", "/operators").build();
        }
        return Response.seeOther(URI.create("/operators")).build();
    }
}
