package lab.steering.web;

import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.Collection;
import java.util.List;
import lab.steering.service.models.ModelRegistry;

/**
 * GET /api/models: every model whose config.json could be read, with its state (available, loading, loaded,
 * failed); GET /api/models/failures: the folders that failed, with the reasons. Nothing is loaded to answer.
 */
@Path("/api/models")
@Produces(MediaType.APPLICATION_JSON)
public class ModelsResource {

    @Inject
    ModelViews models;

    @GET
    public List<ModelViews.ModelInfo> list() {
        return models.list();
    }

    @GET
    @Path("/failures")
    public Collection<ModelRegistry.Failure> failures() {
        return models.failures();
    }
}
