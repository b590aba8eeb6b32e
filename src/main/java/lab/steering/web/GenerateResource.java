package lab.steering.web;

import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import lab.steering.config.LabConfig;
import lab.steering.service.generation.GenerationService;

/** POST /api/generate: validate, delegate, shape the answer. */
@Path("/api/generate")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class GenerateResource {

    @Inject
    GenerationService generation;
    @Inject
    LabConfig config;

    @POST
    public GenerateResponse generate(GenerateRequest req) {
        return GenerateResponse.of(generation.generate(GenerateRequest.spec(req, config.maxNewTokens())));
    }
}
