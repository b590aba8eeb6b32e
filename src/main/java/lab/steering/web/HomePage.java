package lab.steering.web;

import io.quarkus.qute.CheckedTemplate;
import io.quarkus.qute.TemplateInstance;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.FormParam;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import java.util.List;
import lab.steering.config.LabConfig;
import lab.steering.service.Refusal;
import lab.steering.service.generation.GenerationService;

/** The home page: generate text with htmx (the seed of the UI). Errors come back inline as a fragment. */
@Path("/")
@Produces(MediaType.TEXT_HTML)
public class HomePage {

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<ModelViews.ModelInfo> models, String model, String prompt,
                                             GenerateResponse gen, String error);

        static native TemplateInstance index$result(String prompt, GenerateResponse gen, String error);
    }

    @Inject
    ModelViews models;
    @Inject
    GenerationService generation;
    @Inject
    LabConfig config;

    @GET
    public TemplateInstance page() {
        return Templates.index(models.choices(), null, "Once upon a time", null, null);
    }

    @POST
    @Path("ui/generate")
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public TemplateInstance generate(@FormParam("model") String model, @FormParam("prompt") String prompt,
                                     @FormParam("maxNewTokens") String maxNewTokens,
                                     @FormParam("temperature") String temperature, @FormParam("topK") String topK,
                                     @FormParam("topP") String topP, @FormParam("seed") String seed,
                                     @FormParam("repetitionPenalty") String repetitionPenalty,
                                     @FormParam("noRepeatNgramSize") String noRepeatNgramSize,
                                     @Context HttpHeaders headers) {
        GenerateResponse gen = null;
        String error = null;
        try {
            GenerateRequest req = new GenerateRequest(model, prompt, Forms.parse(maxNewTokens, "maxNewTokens", Integer::valueOf),
                    Forms.parse(temperature, "temperature", Double::valueOf), Forms.parse(topK, "topK", Integer::valueOf),
                    Forms.parse(topP, "topP", Double::valueOf), Forms.parse(seed, "seed", Long::valueOf),
                    Forms.number(repetitionPenalty, "repetitionPenalty"),
                    Forms.integer(noRepeatNgramSize, "noRepeatNgramSize"));
            gen = GenerateResponse.of(generation.generate(GenerateRequest.spec(req, config.maxNewTokens())));
        } catch (Refusal e) {
            error = e.getMessage();
        }
        // htmx swaps the result in; a plain form post (no JavaScript) gets the page with its result
        return Forms.htmx(headers) ? Templates.index$result(prompt, gen, error)
                : Templates.index(models.choices(), model, prompt, gen, error);
    }
}
