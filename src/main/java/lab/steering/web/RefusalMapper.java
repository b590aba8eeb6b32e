package lab.steering.web;

import jakarta.ws.rs.core.Response;
import lab.steering.service.Refusal;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/** Services' refusals (unknown operator, fingerprint mismatch, invalid file, ...) as {"error", "message"}. */
public class RefusalMapper {

    @ServerExceptionMapper
    public Response refusal(Refusal e) {
        return ErrorMappers.body(ApiException.of(e));
    }
}
