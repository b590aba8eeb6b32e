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
import java.util.ArrayList;
import java.util.List;
import lab.steering.service.steering.SteeringService;

/**
 * /sweep: a grid of strengths x layers for one operator, each cell's continuation with its concept score and
 * fluency (perplexity under the unsteered model); the suggested cell is the steered one (strength not 0) with the
 * highest concept score among those more on-concept than the unsteered continuation and at most twice as perplexing.
 */
@Path("/sweep")
@Produces(MediaType.TEXT_HTML)
public class SweepPage {

    /** Cells above this multiple of the baseline perplexity are not suggested. */
    public static final double FLUENCY_LIMIT = 2.0;

    public static class Form {
        @FormParam("operatorId") public String operatorId;
        @FormParam("prompt") public String prompt;
        @FormParam("strengths") public String strengths;
        @FormParam("layers") public String layers;
        @FormParam("maxNewTokens") public String maxNewTokens;
        @FormParam("seed") public String seed;
        @FormParam("repetitionPenalty") public String repetitionPenalty;
        @FormParam("noRepeatNgramSize") public String noRepeatNgramSize;

        static Form defaults() {
            Form f = new Form();
            f.prompt = "Once upon a time";
            f.strengths = "0, 2, 4, 8";
            f.maxNewTokens = "12";
            return f;
        }

        public boolean operatorSelected(long id) {
            return Long.toString(id).equals(operatorId);
        }

        SteeringRequests.Sweep request() {
            return new SteeringRequests.Sweep(Forms.longValue(operatorId, "operatorId"), null, prompt,
                    numbers(strengths, "strengths", Double::valueOf), numbers(layers, "layers", Integer::valueOf),
                    Forms.integer(maxNewTokens, "maxNewTokens"), 0.0, null, null, Forms.longValue(seed, "seed"),
                    Forms.number(repetitionPenalty, "repetitionPenalty"),
                    Forms.integer(noRepeatNgramSize, "noRepeatNgramSize"));
        }

        static <T> List<T> numbers(String s, String field, java.util.function.Function<String, T> f) {
            if (s == null || s.isBlank()) {
                return null;
            }
            List<T> out = new ArrayList<>();
            for (String part : s.trim().split("[,\\s]+")) {
                out.add(Forms.parse(part, field, f));
            }
            return out;
        }
    }

    /** The grid: one row per layer, one cell per strength, and the suggested cell. */
    public record Grid(SteeringService.SweepResult result, List<Double> strengths, List<Row> rows,
                       SteeringService.SweepCell best) {

        /** The Steer page filled with this sweep's operator and prompt and the suggested layer and strength. */
        public String steerAddress() {
            return "/steer" + Forms.query("operator", Long.toString(result.operatorId()), "prompt", result.prompt(),
                    "strength", best == null ? null : Double.toString(best.strength()),
                    "layer", best == null ? null : Integer.toString(best.layer()));
        }
    }

    public record Row(int layer, List<Cell> cells) {
    }

    public record Cell(SteeringService.SweepCell cell, boolean best, boolean fluent) {
    }

    static Grid grid(SteeringService.SweepResult r) {
        List<Double> strengths = new ArrayList<>();
        List<Integer> layers = new ArrayList<>();
        for (SteeringService.SweepCell c : r.cells()) {
            if (!strengths.contains(c.strength())) {
                strengths.add(c.strength());
            }
            if (!layers.contains(c.layer())) {
                layers.add(c.layer());
            }
        }
        double limit = FLUENCY_LIMIT * r.baseline().perplexity();
        SteeringService.SweepCell best = null;
        for (SteeringService.SweepCell c : r.cells()) {
            Double base = r.baseline().conceptScore();
            if (c.strength() == 0 || c.conceptScore() == null || c.perplexity() > limit
                    || (base != null && c.conceptScore() <= base)) {
                continue; // unsteered, not fluent, or no more on-concept than the unsteered text
            }
            if (best == null || c.conceptScore() > best.conceptScore()) {
                best = c;
            }
        }
        List<Row> rows = new ArrayList<>();
        for (int l : layers) {
            List<Cell> cells = new ArrayList<>();
            for (SteeringService.SweepCell c : r.cells()) {
                if (c.layer() == l) {
                    cells.add(new Cell(c, c == best, c.perplexity() <= limit));
                }
            }
            rows.add(new Row(l, cells));
        }
        return new Grid(r, strengths, rows, best);
    }

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<SteerPage.Choice> operators, Form form, FormErrors err, Grid grid);

        static native TemplateInstance index$panel(List<SteerPage.Choice> operators, Form form, FormErrors err,
                                                   Grid grid);
    }

    @Inject
    SteerPage steerPage;
    @Inject
    SteeringService steering;

    /** The form, filled from the query's fields (the address a submitted form pushes: bookmarkable). */
    @GET
    public TemplateInstance page(@QueryParam("operator") String operatorId, @QueryParam("prompt") String prompt,
                                 @QueryParam("strengths") String strengths, @QueryParam("layers") String layers,
                                 @QueryParam("maxNewTokens") String maxNewTokens, @QueryParam("seed") String seed,
                                 @QueryParam("repetitionPenalty") String repetitionPenalty,
                                 @QueryParam("noRepeatNgramSize") String noRepeatNgramSize) {
        Form f = Form.defaults();
        f.repetitionPenalty = repetitionPenalty;
        f.noRepeatNgramSize = noRepeatNgramSize;
        f.operatorId = operatorId;
        f.prompt = Forms.or(prompt, f.prompt);
        f.strengths = Forms.or(strengths, f.strengths);
        f.layers = layers;
        f.maxNewTokens = Forms.or(maxNewTokens, f.maxNewTokens);
        f.seed = seed;
        return Templates.index(steerPage.choices(), f, FormErrors.NONE, null);
    }

    /** The address of the form as submitted (see {@link #page}). */
    static String address(Form f) {
        return "/sweep" + Forms.query("operator", f.operatorId, "prompt", f.prompt, "strengths", f.strengths,
                "layers", f.layers, "maxNewTokens", f.maxNewTokens, "seed", f.seed,
                "repetitionPenalty", f.repetitionPenalty, "noRepeatNgramSize", f.noRepeatNgramSize);
    }

    @POST
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public jakarta.ws.rs.core.Response submit(@BeanParam Form form, @Context HttpHeaders headers) {
        Grid grid = null;
        FormErrors err = FormErrors.NONE;
        try {
            grid = grid(steering.sweep(SteeringRequests.sweep(form.request()), null));
        } catch (RuntimeException e) {
            err = FormErrors.of(e);
        }
        List<SteerPage.Choice> ops = steerPage.choices();
        TemplateInstance t = Forms.htmx(headers) ? Templates.index$panel(ops, form, err, grid)
                : Templates.index(ops, form, err, grid);
        jakarta.ws.rs.core.Response.ResponseBuilder r = jakarta.ws.rs.core.Response.ok(t);
        if (Forms.htmx(headers) && !err.any()) {
            r.header("HX-Push-Url", address(form));
        }
        return r.build();
    }
}
