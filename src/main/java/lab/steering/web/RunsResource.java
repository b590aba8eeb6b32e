package lab.steering.web;

import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import java.util.List;
import lab.steering.service.Refusal;
import lab.steering.service.steering.SteeringService;
import org.eclipse.microprofile.openapi.annotations.enums.SchemaType;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.parameters.Parameter;

/** GET /api/runs and /api/runs/{id}: saved steering comparisons. */
@Path("/api/runs")
@Produces(MediaType.APPLICATION_JSON)
public class RunsResource {

    @Inject
    SteeringService steering;
    @Inject
    LibraryViews views;

    @GET
    public List<LibraryViews.RunSummary> list(@QueryParam("model") String model,
                                              @QueryParam("operatorId")
                                              @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String operator,
                                              @QueryParam("limit")
                                              @Parameter(schema = @Schema(type = SchemaType.INTEGER)) String limit) {
        Long operatorId = Forms.longValue(operator, "operatorId");
        Integer given = Forms.integer(limit, "limit");
        int n = given == null ? 50 : given;
        if (n < 1 || n > 500) {
            throw Refusal.invalidField("limit", "must be between 1 and 500, got " + n);
        }
        return steering.runs(model, operatorId, n).stream().map(views::summary).toList();
    }

    @GET
    @Path("/{id}")
    public LibraryViews.RunView get(@PathParam("id") @Parameter(schema = @Schema(type = SchemaType.INTEGER))
                                    String id) {
        return views.run(steering.run(Forms.id(id, "a run")));
    }
}
