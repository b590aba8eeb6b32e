package lab.steering.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.qute.CheckedTemplate;
import io.quarkus.qute.TemplateInstance;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.service.steering.SteeringService;

/** /runs (history, filter by model), /runs/{id} (one run), /runs/compare?a=&b= (two runs side by side). */
@Path("/runs")
@Produces(MediaType.TEXT_HTML)
public class RunsPage {

    /** A run in the history table. */
    public record Row(long id, String createdAt, String model, Long operatorId, String kind, String prompt,
                      double strength, int layer, String normal, String steered) {
    }

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<Row> runs, String model, FormErrors err);

        static native TemplateInstance run(Comparison run, String createdAt);

        static native TemplateInstance compare(Comparison a, Comparison b, String createdA, String createdB);
    }

    @Inject
    SteeringService steering;
    @Inject
    LibraryViews views;
    @Inject
    ObjectMapper json;

    @GET
    public TemplateInstance list(@QueryParam("model") String model) {
        return withRuns(model, FormErrors.NONE);
    }

    /** The list page with {@code err} above it (the runs still listed: an error is about a request, not them). */
    private TemplateInstance withRuns(String model, FormErrors err) {
        try {
            List<Row> rows = steering.runs(Forms.blankToNull(model), null, 200).stream().map(views::summary)
                    .map(r -> new Row(r.id(),
                    r.createdAt().toString(), r.model(), r.operatorId(), r.kind(), r.request().path("prompt").asText(),
                    r.request().path("strength").asDouble(), r.request().path("layer").asInt(), r.normalCompletion(),
                    r.steeredCompletion())).toList();
            return Templates.index(rows, model, err);
        } catch (RuntimeException e) {
            return Templates.index(List.of(), model, err.any() ? err : FormErrors.of(e));
        }
    }

    @GET
    @Path("{id}")
    public Response one(@PathParam("id") String id) {
        try {
            LibraryViews.RunView v = views.run(steering.run(Forms.id(id, "a run")));
            return Response.ok(Templates.run(comparison(v), v.createdAt().toString())).build();
        } catch (Refusal e) {
            return Response.status(e.kind().status()).entity(withRuns(null, FormErrors.of(e).unfielded())).build();
        }
    }

    @GET
    @Path("compare")
    public Response compare(@QueryParam("a") String a, @QueryParam("b") String b) {
        try {
            Long ia = Forms.longValue(a, "a");
            Long ib = Forms.longValue(b, "b");
            if (ia == null || ib == null) {
                throw Refusal.invalidField(ia == null ? "a" : "b", "pick two runs to compare");
            }
            LibraryViews.RunView va = views.run(steering.run(ia));
            LibraryViews.RunView vb = views.run(steering.run(ib));
            return Response.ok(Templates.compare(comparison(va), comparison(vb), va.createdAt().toString(),
                    vb.createdAt().toString())).build();
        } catch (Refusal e) {
            return Response.status(e.kind().status()).entity(withRuns(null, FormErrors.of(e))).build();
        }
    }

    Comparison comparison(LibraryViews.RunView v) {
        try {
            JsonNode req = v.request();
            String concept = req.has("vector") ? req.path("vector").path("conceptPrompt").asText()
                    : "operator #" + req.path("operatorId").asText();
            return Comparison.of(v.id(), v.model(), v.kind(), v.operatorId(), concept, req.path("prompt").asText(),
                    req.path("layer").asInt(), req.path("strength").asDouble(),
                    json.treeToValue(v.normal(), SteeringService.Continuation.class),
                    json.treeToValue(v.steered(), SteeringService.Continuation.class),
                    json.treeToValue(v.diagnostics(), SteeringService.Diagnostics.class));
        } catch (java.io.IOException e) {
            throw new IllegalStateException("run " + v.id() + ": stored JSON is not readable", e);
        }
    }
}
