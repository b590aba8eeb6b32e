package lab.steering.web;

import jakarta.ws.rs.core.Response;
import lab.steering.service.Refusal;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/** Services' refusals (unknown operator, fingerprint mismatch, invalid file, ...) as {"error", "message"}. */
public class RefusalMapper {

    @ServerExceptionMapper
    public Response refusal(Refusal e) {
        if (e.jobId() == null) {
            return ErrorMappers.json(e.status(), e.code(), e.getMessage());
        }
        java.util.Map<String, Object> body = new java.util.LinkedHashMap<>();
        body.put("error", e.code());
        body.put("message", e.getMessage());
        body.put("jobId", e.jobId().toString());
        return Response.status(e.status()).type(jakarta.ws.rs.core.MediaType.APPLICATION_JSON)
                .header(JobsResource.JOB_ID_HEADER, e.jobId().toString()).entity(body).build();
    }
}
