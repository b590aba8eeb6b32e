package lab.steering;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The deployment files parsed with a YAML parser (SnakeYAML) (no Docker engine or cluster here): the generated Kubernetes
 * manifests (docker/k8s, from scripts/k8s-manifests.sh), the GPU kustomization, and docker/compose.yml. Every LAB_*
 * variable they set must be one the app reads (application.properties), so that a renamed variable cannot leave
 * them silently stale.
 */
class DeploymentFilesTest {

    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    /** Every document of a YAML file, parsed by SnakeYAML (which resolves anchors and merge keys, as Compose does). */
    static List<JsonNode> docs(String path) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (Object doc : new org.yaml.snakeyaml.Yaml().loadAll(Files.readString(Path.of(path)))) {
            if (doc != null) {
                out.add(YAML.valueToTree(doc));
            }
        }
        return out;
    }

    static JsonNode deployment(List<JsonNode> docs) {
        return docs.stream().filter(d -> d.path("kind").asText().equals("Deployment")).findFirst().orElseThrow();
    }

    static JsonNode env(JsonNode container, String name) {
        for (JsonNode e : container.path("env")) {
            if (e.path("name").asText().equals(name)) {
                return e;
            }
        }
        return null;
    }

    static Set<String> appVariables() throws IOException {
        Set<String> vars = new TreeSet<>();
        Matcher m = Pattern.compile("\\$\\{(LAB_[A-Z0-9_]+)").matcher(
                Files.readString(Path.of("src/main/resources/application.properties")));
        while (m.find()) {
            vars.add(m.group(1));
        }
        return vars;
    }

    static void checkDeployment(JsonNode dep, String name, String image, String device) throws IOException {
        assertEquals(name, dep.path("metadata").path("name").asText());
        JsonNode c = dep.path("spec").path("template").path("spec").path("containers").get(0);
        assertEquals(image, c.path("image").asText());
        for (String v : List.of("LAB_DB_URL", "LAB_DB_USER", "LAB_DB_PASSWORD")) {
            JsonNode ref = env(c, v).path("valueFrom").path("secretKeyRef");
            assertEquals("steering-db", ref.path("name").asText(), v + " from the Secret");
        }
        assertEquals(device, env(c, "LAB_DEVICE").path("value").asText());
        assertEquals("/q/health/live", c.path("livenessProbe").path("httpGet").path("path").asText());
        assertEquals("/q/health/ready", c.path("readinessProbe").path("httpGet").path("path").asText());
        assertEquals("/models", c.path("volumeMounts").get(0).path("mountPath").asText());
        assertTrue(dep.path("spec").path("template").path("spec").path("securityContext").path("runAsNonRoot")
                .asBoolean());
        Set<String> known = appVariables();
        for (JsonNode e : c.path("env")) {
            String n = e.path("name").asText();
            if (n.startsWith("LAB_")) {
                assertTrue(known.contains(n), n + " is not read by the app " + known);
            }
        }
    }

    @Test
    void cpuManifest() throws IOException {
        List<JsonNode> docs = docs("docker/k8s/kubernetes.yml");
        JsonNode dep = deployment(docs);
        checkDeployment(dep, "steering-lab", "steering-lab:latest", "cpu");
        assertEquals(2, dep.path("spec").path("replicas").asInt());
        assertFalse(dep.toString().contains("nvidia.com/gpu"));
        assertTrue(docs.stream().anyMatch(d -> d.path("kind").asText().equals("Service")));
        assertFalse(docs.stream().anyMatch(d -> d.path("kind").asText().equals("Job")), "no separate Flyway job");
    }

    @Test
    void gpuManifestAndItsKustomization() throws IOException {
        JsonNode dep = deployment(docs("docker/k8s/gpu/kubernetes.yml"));
        checkDeployment(dep, "steering-lab-gpu", "steering-lab-gpu:latest", "cuda");
        JsonNode k = docs("docker/k8s/gpu/kustomization.yaml").get(0);
        assertEquals("kubernetes.yml", k.path("resources").get(0).asText());
        JsonNode patch = k.path("patches").get(0);
        assertEquals("steering-lab-gpu", patch.path("target").path("name").asText());
        JsonNode first = YAML.readTree(patch.path("patch").asText()).get(0); // a JSON 6902 patch, as YAML
        assertEquals("/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu", first.path("path").asText());
        assertEquals("1", first.path("value").asText());
        // the patch adds into limits, which must exist in the generated container
        assertNotNull(dep.path("spec").path("template").path("spec").path("containers").get(0).path("resources")
                .get("limits"));
    }

    @Test
    void secretExampleHasTheKeysTheManifestsRead() throws IOException {
        JsonNode secret = docs("docker/k8s/secret-example.yml").stream()
                .filter(d -> d.path("kind").asText().equals("Secret")).findFirst().orElseThrow();
        assertEquals("steering-db", secret.path("metadata").path("name").asText());
        for (String key : List.of("url", "user", "password")) {
            assertTrue(secret.path("stringData").has(key), key);
        }
    }

    @Test
    void composeHasTheDatabaseTheCpuAppAndTheGpuProfile() throws IOException {
        JsonNode c = docs("docker/compose.yml").get(0);
        JsonNode s = c.path("services");
        assertTrue(s.path("db").path("image").asText().startsWith("postgres:15"));
        assertTrue(s.path("db").path("healthcheck").has("test"));
        assertTrue(c.path("volumes").has("pgdata"));
        assertFalse(s.path("app").has("profiles"), "the CPU app starts by default");
        assertEquals("docker/Dockerfile.gpu", s.path("app-gpu").path("build").path("dockerfile").asText());
        assertEquals("gpu", s.path("app-gpu").path("profiles").get(0).asText());
        JsonNode dev = s.path("app-gpu").path("deploy").path("resources").path("reservations").path("devices").get(0);
        assertEquals("nvidia", dev.path("driver").asText());
        assertEquals("gpu", dev.path("capabilities").get(0).asText());
        for (String svc : List.of("app", "app-gpu")) {
            assertTrue(s.path(svc).path("healthcheck").path("test").toString().contains("/q/health"), svc);
            assertEquals("service_healthy", s.path(svc).path("depends_on").path("db").path("condition").asText());
        }
        Set<String> known = appVariables();
        for (String svc : List.of("app", "app-gpu")) {
            s.path(svc).path("environment").fieldNames().forEachRemaining(n -> {
                if (n.startsWith("LAB_")) {
                    assertTrue(known.contains(n), svc + ": " + n + " is not read by the app");
                }
            });
        }
    }
}
