package lab.steering.web;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;
import lab.steering.service.Refusal;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/** Maps every failure to {"error", "message"} JSON: 4xx for bad requests, 500 without a stack trace otherwise. */
public class ErrorMappers {

    private static final Logger LOG = Logger.getLogger(ErrorMappers.class);

    static Response json(int status, String code, String message) {
        return Response.status(status).type(MediaType.APPLICATION_JSON).entity(new ErrorBody(code, message)).build();
    }

    /**
     * Every refusal, whoever raised it: its kind's status and {"error", "message", ...details}; a refusal about a job
     * also names it (header Job-Id and the body's jobId), a busy one says when to retry (Retry-After).
     */
    @ServerExceptionMapper
    public Response refusal(Refusal e) {
        if (e.details().isEmpty() && e.jobId() == null) {
            return json(e.kind().status(), e.code(), e.getMessage());
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("error", e.code());
        body.put("message", e.getMessage());
        body.putAll(e.details());
        Response.ResponseBuilder r = Response.status(e.kind().status()).type(MediaType.APPLICATION_JSON);
        if (e.jobId() != null) {
            body.put("jobId", e.jobId().toString());
            r.header(JobsResource.JOB_ID_HEADER, e.jobId().toString());
        }
        if (e.details().get("retryAfterSeconds") instanceof Integer seconds) {
            r.header("Retry-After", Integer.toString(seconds));
        }
        return r.entity(body).build();
    }

    /** The heavy-work limiter is full (analyses, exports, jobs, operator builds, sweeps): 429 with Retry-After. */
    @ServerExceptionMapper
    public Response busy(lab.steering.service.Busy e) {
        return refusal(new Refusal(Refusal.Kind.BUSY, "busy", e.getMessage())
                .detail("retryAfterSeconds", e.retryAfterSeconds()));
    }

    @ServerExceptionMapper
    public Response badValue(InvalidFormatException e) {
        return badJson(e);
    }

    @ServerExceptionMapper
    public Response badInput(MismatchedInputException e) {
        return badJson(e);
    }

    @ServerExceptionMapper
    public Response badJson(JsonProcessingException e) {
        if (e instanceof MismatchedInputException mi && !mi.getPath().isEmpty()) {
            String path = mi.getPath().stream().map(r -> r.getFieldName() != null ? r.getFieldName()
                    : "[" + r.getIndex() + "]").collect(Collectors.joining("."));
            if (mi instanceof RequestJson.Refused r) {
                return json(400, "invalid_" + path, path + ": " + r.reason());
            }
            String want = mi instanceof InvalidFormatException ife ? " (expected " + ife.getTargetType().getSimpleName()
                    + ", got " + ife.getValue() + ")" : " has the wrong type";
            return json(400, "invalid_" + path, path + want);
        }
        JsonParser p = e instanceof InputCoercionException ice ? ice.getProcessor() : null;
        if (p != null && p.getParsingContext() != null && p.getParsingContext().getCurrentName() != null) {
            String field = p.getParsingContext().getCurrentName();
            return json(400, "invalid_" + field, field + ": is out of range (" + e.getOriginalMessage() + ")");
        }
        return json(400, "bad_json", "request body is not valid JSON: " + e.getOriginalMessage());
    }

    @ServerExceptionMapper
    public Response web(WebApplicationException e) {
        int status = e.getResponse().getStatus();
        String code = switch (status) {
            case 404 -> "not_found";
            case 405 -> "method_not_allowed";
            case 406 -> "not_acceptable";
            case 415 -> "unsupported_media_type";
            default -> status < 500 ? "bad_request" : "internal";
        };
        if (status == 400 && e.getCause() instanceof JsonProcessingException jpe) {
            return badJson(jpe);
        }
        return json(status, code, e.getMessage() == null ? Response.Status.fromStatusCode(status).getReasonPhrase()
                : e.getMessage());
    }

    /** PyTorch's "CUDA out of memory" (through DJL's EngineException), anywhere in the cause chain. */
    static boolean outOfDeviceMemory(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            String m = t.getMessage();
            if (m != null && m.contains("out of memory") && (t instanceof ai.djl.engine.EngineException
                    || m.contains("CUDA"))) {
                return true;
            }
        }
        return false;
    }

    /** The client went away and its work was stopped: nobody reads this answer (499, as proxies log it). */
    @ServerExceptionMapper
    public Response abandoned(lab.steering.service.ClientGone.Abandoned e) {
        LOG.infof("request abandoned: %s", e.getMessage());
        return json(499, "client_closed_request", e.getMessage());
    }

    @ServerExceptionMapper
    public Response unexpected(RuntimeException e) {
        if (lab.steering.store.DatabaseErrors.unavailable(e)) {
            LOG.warnf("database unavailable: %s", e.getMessage());
            return json(503, "database_unavailable", "the database is unavailable; try again later");
        }
        if (outOfDeviceMemory(e)) { // the estimates let it through, but the GPU was fuller than they assumed
            LOG.warnf("out of device memory: %s", e.getMessage());
            return json(503, "device_out_of_memory", "the device ran out of memory for this request (other work"
                    + " may be holding it); try again later, or with a shorter prompt");
        }
        LOG.error("unexpected error", e);
        if (lab.steering.store.DatabaseErrors.fromTheDatabase(e)) { // its message quotes the SQL: the log has it
            return json(500, "internal", "internal error: a database statement failed (details in the server log)");
        }
        return json(500, "internal", "internal error: " + e.getClass().getSimpleName()
                + (e.getMessage() == null ? "" : ": " + e.getMessage()));
    }
}
