package lab.steering.web;

import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import lab.steering.jacobian.Analysis;
import lab.steering.service.Refusal;
import lab.steering.service.analysis.JacobianJobs;
import lab.steering.service.analysis.JacobianService;

/**
 * The detached Jacobian of a prompt: POST /api/jacobian (the analysis), /api/jacobian/export (the stack as a
 * safetensors file) and /api/jacobian/jobs (the analysis as a job with progress and cancellation). Validates and
 * delegates; every heavy request goes through the service's bounded executor (429 when it is full).
 */
@Path("/api/jacobian")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class JacobianResource {

    @Inject
    JacobianService service;
    @Inject
    JacobianJobs jobs;
    @Inject
    lab.steering.service.analysis.AnalysisPlanner planner;

    @POST
    public Analysis.Result analyze(JacobianRequest req) {
        return service.analyze(check(req, false));
    }

    @POST
    @Path("export")
    @Produces({MediaType.APPLICATION_OCTET_STREAM, MediaType.APPLICATION_JSON})
    public Response export(JacobianRequest req) {
        JacobianService.Export e = service.export(check(req, true));
        return Response.ok((StreamingOutput) out -> e.file().write(out), MediaType.APPLICATION_OCTET_STREAM_TYPE)
                .header("Content-Disposition", "attachment; filename=\"" + e.filename() + "\"")
                .build();
    }

    @POST
    @Path("jobs")
    public Response submit(JacobianRequest req,
            @jakarta.ws.rs.HeaderParam(JobsResource.IDEMPOTENCY_KEY) String idempotencyKey) {
        JacobianJobs.View v = jobs.submit(check(req, false), idempotencyKey);
        return Response.status(202).entity(v).header("Location", "/api/jacobian/jobs/" + v.id())
                .header(JobsResource.JOB_ID_HEADER, v.id()).build();
    }

    @GET
    @Path("jobs/{id}")
    public JacobianJobs.View job(@PathParam("id") String id) {
        return jobs.get(id).orElseThrow(() -> unknownJob(id));
    }

    @DELETE
    @Path("jobs/{id}")
    public Response cancel(@PathParam("id") String id) {
        return Response.status(202).entity(jobs.cancel(id).orElseThrow(() -> unknownJob(id))).build();
    }

    private static Refusal unknownJob(String id) {
        return Refusal.notFound("unknown_job", "job '" + id + "' does not exist (or was dropped)");
    }

    JacobianService.Request check(JacobianRequest req, boolean export) {
        return planner.plan(req == null ? null : req.spec(), export);
    }


}
