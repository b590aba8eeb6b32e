package lab.steering.web;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.time.Instant;
import lab.steering.service.Refusal;
import lab.steering.service.jobs.JobQueue;
import lab.steering.store.JobStore;

/**
 * GET /api/jobs/{id}: any job of the queue, whatever its kind (an analysis, an operator build, a sweep, a comparison
 * or evaluation batch). Every answer of a request that queued or found a job carries its id in the
 * {@value #JOB_ID_HEADER} header (and errors in their {@code jobId} field), so that a client whose answer was an
 * error (the database went away while it waited, a timeout) can follow the work here, or retry the same POST with
 * the same {@value #IDEMPOTENCY_KEY} header to get the first request's result.
 */
@Path("/api/jobs")
@Produces(MediaType.APPLICATION_JSON)
public class JobsResource {

    public static final String JOB_ID_HEADER = "Job-Id";
    public static final String IDEMPOTENCY_KEY = "Idempotency-Key";

    @Inject
    JobQueue queue;
    @Inject
    ObjectMapper json;

    /** A job: its state, and its result (the kind's JSON) once done. */
    public record JobView(String id, String kind, String model, String status, double progress, String stage,
                          int attempts, int maxAttempts, boolean cancelRequested, Instant createdAt,
                          Instant startedAt, Instant finishedAt, String error, String errorCode,
                          Integer errorStatus, JsonNode result) {
    }

    @GET
    @Path("/{id}")
    public JobView get(@PathParam("id") String id) {
        JobStore.Job j = queue.get(id, true).orElseThrow(() -> Refusal.notFound("unknown_job",
                "no job with id '" + id + "' (finished jobs are kept while they are among the newest"
                        + " lab.jobs.kept)"));
        JsonNode result = null;
        if (j.result() != null) {
            try {
                result = json.readTree(j.result());
            } catch (JsonProcessingException e) {
                throw new IllegalStateException("job " + id + " holds a result that is not JSON", e);
            }
        }
        return new JobView(j.id().toString(), j.kind(), j.modelId(), j.status(), j.progress(), j.stage(),
                j.attempts(), j.maxAttempts(), j.cancelRequested(), j.createdAt(), j.startedAt(), j.finishedAt(),
                j.error(), j.errorCode(), j.errorStatus(), result);
    }
}
