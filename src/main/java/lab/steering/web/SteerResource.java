package lab.steering.web;

import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import lab.steering.config.LabConfig;
import lab.steering.service.steering.SteeringService;

/** POST /api/steer (unsteered and steered side by side, with diagnostics) and POST /api/steer/sweep. */
@Path("/api/steer")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class SteerResource {

    @Inject
    SteeringService steering;
    @Inject
    LabConfig config;

    @POST
    public SteeringService.SteerResult steer(SteeringRequests.Steer req) {
        return steering.steer(SteeringRequests.steer(req, config.maxNewTokens()));
    }

    @POST
    @Path("/sweep")
    public SteeringService.SweepResult sweep(SteeringRequests.Sweep req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        return steering.sweep(SteeringRequests.sweep(req), idempotencyKey);
    }
}
