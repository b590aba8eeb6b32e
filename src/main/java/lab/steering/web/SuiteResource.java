package lab.steering.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.service.evaluation.EvaluationService;
import lab.steering.steer.EvalSuite;

/**
 * Steering-benchmark suites: POST /api/suites imports one (the JSON that GET exports: {name, description, concepts:
 * [{name, conceptPrompt, contrastPrompt, words}], prompts}; 201, or 400 naming the bad field), GET /api/suites lists
 * the stored ones, GET /api/suites/{id} exports one (a download), GET /api/suites/default the suite that ships with
 * the app.
 */
@Path("/api/suites")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class SuiteResource {

    @Inject
    EvaluationService service;
    @Inject
    ObjectMapper json;

    @POST
    public Response create(JsonNode body) {
        EvaluationService.SuiteInfo s = service.createSuite(service.parseSuite(body));
        return Response.status(201).entity(s).header("Location", "/api/suites/" + s.id()).build();
    }

    @GET
    public List<EvaluationService.SuiteInfo> list() {
        return service.suites(200);
    }

    @GET
    @Path("default")
    public EvalSuite defaultSuite() {
        return EvalSuite.defaultSuite();
    }

    @GET
    @Path("{id}")
    public Response export(@PathParam("id") String id) {
        long n = Forms.id(id, "a suite");
        EvalSuite s = service.suite(n).orElseThrow(() -> Refusal.notFound("unknown_suite", "suite " + id
                + " does not exist"));
        return Response.ok(s).header("Content-Disposition", "attachment; filename=\"suite-" + n + ".json\"").build();
    }
}
