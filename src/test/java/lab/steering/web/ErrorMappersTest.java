package lab.steering.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.EngineException;
import jakarta.ws.rs.core.Response;
import org.junit.jupiter.api.Test;

/** PyTorch running out of GPU memory is a 503 with a JSON body, not a 500 with the native message. */
class ErrorMappersTest {

    @Test
    void cudaOutOfMemoryIsA503() {
        RuntimeException oom = new IllegalStateException("analysis failed", new EngineException(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity)"));
        assertTrue(ErrorMappers.outOfDeviceMemory(oom));
        Response r = new ErrorMappers().unexpected(oom);
        assertEquals(503, r.getStatus());
        ErrorBody body = (ErrorBody) r.getEntity();
        assertEquals("device_out_of_memory", body.error());
        assertFalse(body.message().contains("GiB"), "no native detail in the message: " + body.message());
    }

    @Test
    void otherFailuresAreNot() {
        assertFalse(ErrorMappers.outOfDeviceMemory(new IllegalStateException("out of range")));
        assertFalse(ErrorMappers.outOfDeviceMemory(new EngineException("shape mismatch")));
        assertEquals(500, new ErrorMappers().unexpected(new IllegalStateException("boom")).getStatus());
    }

    /** A failed statement's message quotes the SQL and the values: the answer says only that one failed. */
    @Test
    void aDatabaseFailureDoesNotQuoteItsStatement() {
        RuntimeException e = new IllegalStateException("could not execute statement", new java.sql.SQLException(
                "ERROR: value too long [insert into operator (name) values ('secret')]", "22001"));
        Response r = new ErrorMappers().unexpected(e);
        assertEquals(500, r.getStatus());
        ErrorBody body = (ErrorBody) r.getEntity();
        assertFalse(body.message().contains("insert") || body.message().contains("secret"), body.message());
        assertTrue(body.message().contains("database statement failed"), body.message());
    }
}
