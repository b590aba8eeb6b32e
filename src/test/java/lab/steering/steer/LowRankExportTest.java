package lab.steering.steer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import lab.steering.SharedModels;
import lab.steering.hook.Hooks;
import lab.steering.hook.Site;
import lab.steering.model.LanguageModel;
import lab.steering.model.SafetensorsReader;
import lab.steering.model.SafetensorsWriter;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The low-rank export for other tools: scripts/lowrank_steer.py (numpy alone) reads the file and steers a residual
 * stream as the app's {@link Injector} does. Skipped where python3 with numpy is missing (the build needs no Python;
 * {@code -Dlab.test.python=PATH} picks the interpreter).
 */
class LowRankExportTest {

    static final String PYTHON = System.getProperty("lab.test.python", "python3");

    static boolean numpy() {
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import numpy").redirectErrorStream(true).start();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /** x, h and the app's steered h at every position of one forward pass, (t, d) each, row-major. */
    record Pass(float[] x, float[] h, float[] steered) {
    }

    static Pass steer(LanguageModel model, SteeringOperator op, double lambda, long[] ids) {
        float[][] out = new float[3][];
        Hooks.Builder b = Hooks.builder();
        b.add(Site.embed(), (s, x, c) -> {
            out[0] = x.toType(DataType.FLOAT32, false).toFloatArray();
            return x;
        });
        Site site = Site.residPre(op.layer() - 1);
        b.add(site, (s, h, c) -> {
            out[1] = h.toType(DataType.FLOAT32, false).toFloatArray();
            return h;
        });
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            Hooks inj = new Injector(op, lambda, m, DataType.FLOAT32).hooks();
            b.add(Site.embed(), (s, x, c) -> inj.run(s, x, c));
            b.add(site, (s, h, c) -> inj.run(s, h, c));
            b.add(site, (s, h, c) -> {
                out[2] = h.toType(DataType.FLOAT32, false).toFloatArray();
                return h;
            });
            NDArray input = m.create(ids, new Shape(1, ids.length));
            model.transformer().forward(input, null, b.build());
        }
        return new Pass(out[0], out[1], out[2]);
    }

    @Test
    void theNumpyScriptSteersAsTheApp() throws Exception {
        Path folder = SharedModels.require(SharedModels.STORIES_TEXT);
        Assumptions.assumeTrue(numpy(), "skipped: " + PYTHON + " with numpy is not available");
        try (LanguageModel model = LanguageModel.load(folder, Device.cpu())) {
            long[] concept = model.tokenizer().encode("The dog barked at the cat in the garden");
            SteeringOperator lr = OperatorBuilder.lowRank(
                    OperatorBuilder.full(model, concept, 3, DataType.FLOAT32, r -> { }), 8, 0);
            byte[] file = LowRankExport.encode(lr, "ef".repeat(32), "The dog barked at the cat in the garden", null);
            JsonNode meta = new ObjectMapper().readTree(SafetensorsReader.fromBytes(file, "export").metadata()
                    .get("steering_lab"));
            assertEquals(3, meta.get("layer").asInt());
            assertEquals(8, meta.get("rank").asInt());
            assertEquals(concept.length, meta.get("conceptIds").size());
            // a text longer than the concept, so that positions wrap around (k mod T_c)
            long[] ids = model.tokenizer().encode("Once upon a time there was a little dog who liked to run in the "
                    + "park with his friend the cat, and they played all day long");
            assertTrue(ids.length > concept.length);
            double lambda = 1.5;
            Pass pass = steer(model, lr, lambda, ids);
            int d = lr.dim();
            Path dir = Files.createTempDirectory("lowrank");
            Files.write(dir.resolve("op.safetensors"), file);
            new SafetensorsWriter().add("x", "F32", pass.x(), ids.length, d).add("h", "F32", pass.h(), ids.length, d)
                    .write(dir.resolve("in.safetensors"));
            Process p = new ProcessBuilder(PYTHON, "scripts/lowrank_steer.py", dir.resolve("op.safetensors").toString(),
                    dir.resolve("in.safetensors").toString(), dir.resolve("out.safetensors").toString(),
                    "--strength", Double.toString(lambda)).redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, log);
            float[] theirs;
            try (SafetensorsReader r = SafetensorsReader.fromBytes(Files.readAllBytes(dir.resolve("out.safetensors")),
                    "script output")) {
                theirs = r.readFloats("h_steered");
            }
            // float32 both sides, summed in another order: within 1e-5 of ||h_k|| (observed about 1e-7)
            double worst = 0;
            for (int k = 0; k < ids.length; k++) {
                double norm = 0;
                double diff = 0;
                double moved = 0;
                for (int i = 0; i < d; i++) {
                    int at = k * d + i;
                    norm += (double) pass.h()[at] * pass.h()[at];
                    diff = Math.max(diff, Math.abs(theirs[at] - pass.steered()[at]));
                    moved = Math.max(moved, Math.abs(pass.steered()[at] - pass.h()[at]));
                }
                assertTrue(moved > 0, "position " + k + " is steered");
                worst = Math.max(worst, diff / Math.sqrt(norm));
            }
            assertTrue(worst < 1e-5, "worst difference relative to ||h_k||: " + worst);
            System.out.println("LowRankExportTest: worst |numpy - app| / ||h_k|| = " + worst);
        }
    }
}
