package lab.steering.web;

import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.HashSet;
import java.util.List;
import lab.steering.config.LabConfig;
import lab.steering.generate.GenerationParams;
import lab.steering.service.Refusal;
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
        return steering.steer(spec(req));
    }

    /** The request's field checks (400 invalid_FIELD), as the service's spec. */
    SteeringService.SteerSpec spec(SteeringRequests.Steer req) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        int sources = (req.operatorId() == null ? 0 : 1) + (req.vectorId() == null ? 0 : 1)
                + (req.vector() == null ? 0 : 1);
        if (sources != 1) {
            throw Refusal.invalidField("operatorId", "give one of operatorId, vectorId (a saved vector) or vector"
                    + " (not several, not none)");
        }
        if (req.vector() != null) {
            SteeringRequests.required(req.vector().conceptPrompt(), "vector.conceptPrompt");
        }
        SteeringRequests.required(req.prompt(), "prompt");
        double strength = SteeringRequests.strength(req.strength(), "strength");
        GenerationParams params = SteeringRequests.params(req.maxNewTokens(), 32, config.maxNewTokens(),
                req.temperature(), req.topK(), req.topP(), req.seed(), req.repetitionPenalty(),
                req.noRepeatNgramSize());
        return new SteeringService.SteerSpec(req.model(), req.operatorId(), req.vectorId(),
                req.vector() == null ? null : req.vector().conceptPrompt(),
                req.vector() == null ? null : req.vector().contrastPrompt(), req.prompt(), strength, req.layer(),
                params);
    }

    @POST
    @Path("/sweep")
    public SteeringService.SweepResult sweep(SteeringRequests.Sweep req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        SteeringRequests.required(req.operatorId(), "operatorId");
        SteeringRequests.required(req.prompt(), "prompt");
        List<Double> strengths = req.strengths();
        if (strengths == null || strengths.isEmpty() || strengths.size() > SteeringRequests.MAX_SWEEP_STRENGTHS) {
            throw Refusal.invalidField("strengths", "must list 1.." + SteeringRequests.MAX_SWEEP_STRENGTHS
                    + " values");
        }
        for (Double s : strengths) {
            SteeringRequests.strength(s == null ? Double.NaN : s, "strengths");
        }
        List<Integer> layers = req.layers();
        if (layers != null) {
            if (layers.contains(null) || new HashSet<>(layers).size() != layers.size()) {
                throw Refusal.invalidField("layers", "must be distinct layer numbers");
            }
            int cells = strengths.size() * Math.max(1, layers.size());
            if (cells > SteeringRequests.MAX_SWEEP_CELLS) {
                throw Refusal.invalidField("layers", strengths.size() + " strengths x " + layers.size()
                        + " layers = " + cells + " cells, at most " + SteeringRequests.MAX_SWEEP_CELLS);
            }
        }
        GenerationParams params = SteeringRequests.params(req.maxNewTokens(), 24, SteeringRequests.MAX_SWEEP_TOKENS,
                req.temperature(), req.topK(), req.topP(), req.seed(), req.repetitionPenalty(),
                req.noRepeatNgramSize());
        return steering.sweep(new SteeringService.SweepSpec(req.operatorId(), req.model(), req.prompt(), strengths,
                layers, params), idempotencyKey);
    }
}
