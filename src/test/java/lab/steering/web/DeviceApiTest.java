package lab.steering.web;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.aMapWithSize;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.everyItem;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.hasKey;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.nullValue;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.util.Map;
import lab.steering.SharedModels;
import lab.steering.TestModels;
import org.junit.jupiter.api.Test;

/** What the app says about its device on a machine without a GPU: /api/models, /q/health and the 413 estimate. */
@QuarkusTest
@QuarkusTestResource(TestModels.class)
class DeviceApiTest {

    @Test
    void modelsReportDeviceAndBothDtypes() {
        given().get("/api/models").then().statusCode(200)
                .body("device", everyItem(equalTo("cpu()")))
                .body("dtype", everyItem(equalTo("float32")))          // generation: float32 on the CPU
                .body("analysisDtype", everyItem(equalTo("float32")));
    }

    @Test
    void healthHasADeviceCheckThatSaysCpu() {
        given().get("/q/health").then().statusCode(200)
                .body("checks.name", hasItem("device"))
                .body("checks.find { it.name == 'device' }.status", equalTo("UP"))
                .body("checks.find { it.name == 'device' }.data.device", equalTo("cpu"))
                .body("checks.find { it.name == 'device' }.data.generationDtype", equalTo("float32"))
                // on the CPU the check's data is exactly these two fields: no card, no memory figures
                .body("checks.find { it.name == 'device' }.data", aMapWithSize(2))
                .body("checks.find { it.name == 'device' }.data", not(hasKey("gpu")))
                .body("checks.find { it.name == 'device' }.data", not(hasKey("memoryTotalMb")));
    }

    @Test
    void tooLargeNamesWhatSetTheLimit() {
        SharedModels.require(SharedModels.STORIES_TEXT);
        String prompt = "Once upon a time there was a little girl named Lily who liked to play in the park with her"
                + " dog and her friends every day after school";
        given().contentType(ContentType.JSON)
                .body(Map.of("model", SharedModels.STORIES_TEXT, "prompt", prompt, "dtype", "float64",
                        "method", "full"))
                .post("/api/jacobian").then().statusCode(413)
                .body("error", equalTo("too_large"))
                .body("limitedBy", equalTo("lab.jacobian.max-bytes"))
                .body("message", containsString("lab.jacobian.max-bytes"))
                .body("deviceFreeMb", nullValue()); // only on a GPU
    }
}
