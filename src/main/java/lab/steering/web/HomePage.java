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
import jakarta.ws.rs.core.MediaType;
import java.util.List;

/** The home page: generate text with htmx (the seed of the UI). Errors come back inline as a fragment. */
@Path("/")
@Produces(MediaType.TEXT_HTML)
public class HomePage {

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<ModelsResource.ModelInfo> models, String prompt,
                                             GenerateResponse gen, String error);

        static native TemplateInstance index$result(String prompt, GenerateResponse gen, String error);
    }

    @Inject
    ModelsResource models;
    @Inject
    GenerateResource generate;

    @GET
    public TemplateInstance page() {
        return Templates.index(models.list(), "Once upon a time", null, null);
    }

    @POST
    @Path("ui/generate")
    @Consumes(MediaType.APPLICATION_FORM_URLENCODED)
    public TemplateInstance generate(@FormParam("model") String model, @FormParam("prompt") String prompt,
                                     @FormParam("maxNewTokens") String maxNewTokens,
                                     @FormParam("temperature") String temperature, @FormParam("topK") String topK,
                                     @FormParam("topP") String topP, @FormParam("seed") String seed) {
        try {
            GenerateRequest req = new GenerateRequest(model, prompt, Forms.parse(maxNewTokens, "maxNewTokens", Integer::valueOf),
                    Forms.parse(temperature, "temperature", Double::valueOf), Forms.parse(topK, "topK", Integer::valueOf),
                    Forms.parse(topP, "topP", Double::valueOf), Forms.parse(seed, "seed", Long::valueOf));
            return Templates.index$result(prompt, generate.generate(req), null);
        } catch (ApiException e) {
            return Templates.index$result(prompt, null, e.getMessage());
        }
    }
}
