package lab.steering.web;

import com.fasterxml.jackson.databind.ObjectMapper;
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
import java.util.Locale;
import java.util.Optional;
import lab.steering.eval.SteeringBenchmark;
import lab.steering.service.Refusal;
import lab.steering.service.evaluation.EvaluationRequest;
import lab.steering.service.evaluation.EvaluationService;
import lab.steering.service.models.ModelRegistry;
import lab.steering.steer.TextScores;
import lab.steering.store.EvaluationStore;

/**
 * /evaluations: the steering benchmark. The form starts a run (POST /evaluations) and goes to its page,
 * /evaluations/{id} (stored, bookmarkable), which polls its fragment every second while the job runs, then shows a
 * table per method (chosen strength and layer, means with 95% intervals on the report prompts), the concept-vs-fluency
 * plot of every setting tried on the selection prompts (chosen ones ringed), and one concept and prompt's outputs
 * beside the unsteered text ({@code ?c=N&p=M}). Suites are imported here from JSON and exported by link.
 */
@Path("/evaluations")
@Produces(MediaType.TEXT_HTML)
public class EvaluationPage {

    /** The form's fields as typed. */
    public static class Form {
        @FormParam("model") public String model;
        @FormParam("suiteId") public String suiteId;
        @FormParam("concepts") public String concepts;
        @FormParam("prompts") public String prompts;
        @FormParam("methods") public List<String> methods;
        @FormParam("strengths") public String strengths;
        @FormParam("layers") public String layers;
        @FormParam("maxNewTokens") public String maxNewTokens;
        @FormParam("seed") public String seed;

        static Form defaults() {
            Form f = new Form();
            f.suiteId = "";
            f.concepts = "";
            f.prompts = "";
            f.methods = SteeringBenchmark.METHODS;
            f.strengths = "1, 2, 4";
            f.layers = "";
            f.maxNewTokens = "24";
            f.seed = "7";
            return f;
        }

        public List<String> allMethods() {
            return SteeringBenchmark.METHODS;
        }

        public boolean checked(String method) {
            return methods != null && methods.contains(method);
        }

        public boolean suite(long id) {
            return String.valueOf(id).equals(suiteId);
        }

        EvaluationRequest request() {
            return new EvaluationRequest(null, Forms.longValue(suiteId, "suiteId"), Forms.integer(concepts, "concepts"),
                    Forms.integer(prompts, "prompts"), Forms.blankToNull(model),
                    methods == null ? List.of() : methods, numbers(strengths, "strengths", Double::parseDouble),
                    numbers(layers, "layers", Integer::parseInt), Forms.integer(maxNewTokens, "maxNewTokens"),
                    Forms.longValue(seed, "seed"), null, null, null, null);
        }

        static <T> List<T> numbers(String text, String field, java.util.function.Function<String, T> parse) {
            if (text == null || text.isBlank()) {
                return null;
            }
            List<T> out = new ArrayList<>();
            for (String s : text.split("[,\\s]+")) {
                if (!s.isEmpty()) {
                    out.add(Forms.parse(s, field, parse));
                }
            }
            return out;
        }
    }

    /** One output beside the unsteered text of the same concept and prompt. */
    public record Side(EvaluationService.Row row, String method, String unsteered) {
    }

    /** A method's line in the table: its chosen setting and the intervals of the shown scores, in column order. */
    public record Line(EvaluationService.MethodView m, List<TextScores.Interval> cells) {
    }

    /** An evaluation as the page draws it. */
    public record PageView(EvaluationService.View v, int percent, List<Line> lines, Charts.Chart plot,
                           List<String> concepts, List<String> prompts, int concept, int prompt, List<Side> sides) {

        /** The score columns of the table. */
        public static final List<String> COLUMNS = List.of("aggregate", "concept", "fluency", "promptRelevance",
                "hits", "conceptLogProb", "conceptSimilarity", "perplexity", "repetition", "distinct2");

        public List<String> columns() {
            return COLUMNS;
        }

        static PageView of(EvaluationService.View v, EvaluationService.Stored stored, int c, int p) {
            int percent = (int) Math.round(v.progress() * 100);
            List<String> concepts = stored.suite().concepts().stream().map(x -> x.name()).toList();
            List<String> prompts = stored.suite().prompts();
            int cc = Math.max(0, Math.min(concepts.size() - 1, c));
            int pp = Math.max(0, Math.min(prompts.size() - 1, p));
            if (v.methods() == null) {
                return new PageView(v, percent, List.of(), null, concepts, prompts, cc, pp, List.of());
            }
            List<Line> lines = new ArrayList<>();
            for (EvaluationService.MethodView m : v.methods()) {
                lines.add(new Line(m, COLUMNS.stream().map(k -> m.scores().get(k)).toList()));
            }
            List<Charts.Labelled> points = new ArrayList<>();
            for (SteeringBenchmark.GridPoint g : v.grid()) {
                String setting = g.strength() == null ? "" : String.format(Locale.ROOT, " λ=%s L%d", g.strength(),
                        g.layer());
                points.add(new Charts.Labelled(g.method(), g.fluency(), g.concept(), String.format(Locale.ROOT,
                        "%s%s: concept %.3f, fluency %.3f, aggregate %.3f%s", g.method(), setting, g.concept(),
                        g.fluency(), g.aggregate(), g.chosen() ? " (chosen)" : ""), g.chosen()));
            }
            Charts.Chart plot = Charts.unitScatter(points, "fluency F (selection prompts)", "concept C");
            String unsteered = null;
            List<Side> sides = new ArrayList<>();
            for (EvaluationService.MethodView m : v.methods()) {
                for (EvaluationService.Row r : m.rows()) {
                    if (r.concept() == cc && r.prompt() == pp && m.method().equals(SteeringBenchmark.NONE)) {
                        unsteered = r.text();
                    }
                }
            }
            for (EvaluationService.MethodView m : v.methods()) {
                for (EvaluationService.Row r : m.rows()) {
                    if (r.concept() == cc && r.prompt() == pp) {
                        sides.add(new Side(r, m.method(), unsteered));
                    }
                }
            }
            return new PageView(v, percent, lines, plot, concepts, prompts, cc, pp, sides);
        }
    }

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<ModelViews.ModelInfo> models, Form form, FormErrors err,
                                             List<EvaluationService.SuiteInfo> suites, String suiteText,
                                             FormErrors suiteErr, String suiteMessage,
                                             List<EvaluationStore.Listed> recent, String recentError);

        static native TemplateInstance index$form(List<ModelViews.ModelInfo> models, Form form, FormErrors err,
                                                  List<EvaluationService.SuiteInfo> suites);

        static native TemplateInstance one(PageView page, String error);

        static native TemplateInstance one$result(PageView page);
    }

    @Inject
    ModelViews models;
    @Inject
    ModelRegistry registry;
    @Inject
    EvaluationService service;
    @Inject
    ObjectMapper json;

    @GET
    public TemplateInstance page() {
        return index(defaults(), FormErrors.NONE, "", FormErrors.NONE, null);
    }

    /** The form's defaults, on the app's default model. */
    private Form defaults() {
        Form f = Form.defaults();
        f.model = registry.defaultId();
        return f;
    }

    private TemplateInstance index(Form form, FormErrors err, String suiteText, FormErrors suiteErr, String message) {
        List<EvaluationStore.Listed> recent = List.of();
        List<EvaluationService.SuiteInfo> suites = List.of();
        String recentError = null;
        try {
            recent = service.list(20);
            suites = service.suites(100);
        } catch (RuntimeException e) {
            recentError = FormErrors.of(e).message();
        }
        return Templates.index(models.choices(), form, err, suites, suiteText, suiteErr, message, recent, recentError);
    }

    @POST
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public Response submit(@BeanParam Form form, @Context HttpHeaders headers) {
        try {
            EvaluationService.View v = service.submit(service.plan(form.request()));
            String to = "/evaluations/" + v.id();
            return Forms.htmx(headers) ? Response.ok().header("HX-Redirect", to).build()
                    : Response.seeOther(URI.create(to)).build();
        } catch (RuntimeException e) {
            FormErrors err = FormErrors.of(e);
            if (Forms.htmx(headers)) {
                List<EvaluationService.SuiteInfo> suites = List.of();
                try {
                    suites = service.suites(100);
                } catch (RuntimeException ignored) {
                    // the form shows the default suite only
                }
                return Response.ok(Templates.index$form(models.choices(), form, err, suites)).build();
            }
            return Response.ok(index(form, err, "", FormErrors.NONE, null)).build();
        }
    }

    /** Imports a suite pasted as JSON (the format GET /api/suites/{id} exports). */
    @POST
    @Path("suites")
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public Response importSuite(@FormParam("suite") String text) {
        try {
            com.fasterxml.jackson.databind.JsonNode node;
            try {
                node = json.readTree(text == null ? "" : text);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new Refusal(Refusal.Kind.INVALID, "invalid_suite", "not JSON: " + e.getOriginalMessage());
            }
            EvaluationService.SuiteInfo s = service.createSuite(service.parseSuite(node));
            Form f = defaults();
            f.suiteId = String.valueOf(s.id());
            return Response.ok(index(f, FormErrors.NONE, "", FormErrors.NONE, "suite #" + s.id() + " “" + s.name()
                    + "” stored: " + s.concepts() + " concepts × " + s.prompts() + " prompts")).build();
        } catch (RuntimeException e) {
            return Response.ok(index(defaults(), FormErrors.NONE, text, FormErrors.of(e).unfielded(), null))
                    .build();
        }
    }

    @GET
    @Path("{id}")
    public Response one(@PathParam("id") String id, @QueryParam("c") String c, @QueryParam("p") String p) {
        Optional<PageView> v = find(id, c, p);
        if (v.isEmpty()) {
            return Response.status(404).entity(Templates.one(null, "evaluation " + id + " does not exist")).build();
        }
        return Response.ok(Templates.one(v.get(), null)).build();
    }

    /** The result fragment (polled while the job runs). */
    @GET
    @Path("{id}/status")
    public Response status(@PathParam("id") String id, @QueryParam("c") String c, @QueryParam("p") String p) {
        return find(id, c, p).map(v -> Response.ok(Templates.one$result(v)).build())
                // 200, not 404: htmx swaps only 2xx answers, and the swap is what stops the polling
                .orElseGet(() -> Response.ok("<div id=\"result\"><p class=\"error\" role=\"alert\">evaluation not"
                        + " found</p></div>").build());
    }

    @POST
    @Path("{id}/cancel")
    public Response cancel(@PathParam("id") String id) {
        try {
            service.cancel(Forms.id(id, "an evaluation"));
        } catch (Refusal e) {
            // an id that is not a number: the status fragment says it does not exist
        }
        return status(id, null, null);
    }

    private Optional<PageView> find(String id, String c, String p) {
        long n;
        try {
            n = Forms.id(id, "an evaluation");
        } catch (Refusal e) {
            return Optional.empty();
        }
        return service.get(n).map(v -> PageView.of(v, service.stored(n).orElseThrow(), index(c), index(p)));
    }

    private static int index(String s) {
        try {
            return s == null ? 0 : Integer.parseInt(s.trim());
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
