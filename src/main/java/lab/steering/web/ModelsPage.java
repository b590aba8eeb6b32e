package lab.steering.web;

import io.quarkus.qute.CheckedTemplate;
import io.quarkus.qute.TemplateInstance;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.Collection;
import java.util.List;
import lab.steering.service.models.ModelRegistry;

/**
 * /models: every model with its state (available, loading, loaded, failed), shapes, device and memory, the memory
 * budget, and the folders that failed.
 */
@Path("/models")
@Produces(MediaType.TEXT_HTML)
public class ModelsPage {

    @CheckedTemplate
    static class Templates {
        static native TemplateInstance index(List<ModelViews.ModelInfo> models,
                                             Collection<ModelRegistry.Failure> failures, ModelViews.Memory memory);
    }

    @Inject
    ModelViews models;

    @GET
    public TemplateInstance page() {
        return Templates.index(models.list(), models.failures(), models.memory());
    }
}
