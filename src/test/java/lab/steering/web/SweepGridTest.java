package lab.steering.web;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import lab.steering.service.steering.SteeringService;
import org.junit.jupiter.api.Test;

/** The sweep grid's suggestion, as the Sweep page links it. */
class SweepGridTest {

    static SteeringService.SweepCell cell(int layer, double strength, double score, double perplexity) {
        return new SteeringService.SweepCell(layer, strength, "text", 4, "length", score, perplexity);
    }

    @Test
    void steerWithItOpensSteerWithTheOperatorThePromptAndTheSuggestedCell() {
        SteeringService.Continuation baseline = new SteeringService.Continuation("base", List.of(), "length", 10.0,
                -5.0);
        SteeringService.SweepResult r = new SteeringService.SweepResult(7, "m", "Once upon a time & more", "dog", 3,
                baseline, List.of(cell(2, 0, -5, 10), cell(3, 1.5, -2, 11), cell(3, 4, -1, 500)), 1.0);
        SweepPage.Grid g = SweepPage.grid(r);
        assertEquals(3, g.best().layer());
        assertEquals(1.5, g.best().strength());
        assertEquals("/steer?operator=7&prompt=Once+upon+a+time+%26+more&strength=1.5&layer=3", g.steerAddress());
    }
}
