package lab.steering.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import lab.steering.service.steering.SteeringService;
import org.junit.jupiter.api.Test;

/** The SVG geometry and the sweep's suggestion, without the app. */
class ChartsTest {

    static final double EPS = 1e-9; // pixel arithmetic in double

    @Test
    void logLinesPlaceDecadesEvenlyAndKeepValues() {
        Charts.Chart c = Charts.lines(List.of("t"), List.of(new double[]{100, 10, 1}), true, "i", "sigma");
        List<Charts.Point> p = c.series().get(0).marks();
        assertEquals(p.get(0).y() - p.get(1).y(), p.get(1).y() - p.get(2).y(), 1e-6, "one decade, one step");
        assertTrue(p.get(0).y() < p.get(2).y(), "larger values higher up");
        assertEquals(10, p.get(1).value(), EPS);
        assertEquals(List.of("1e0", "1e1", "1e2"), c.yTicks().stream().map(Charts.Tick::label).toList());
    }

    @Test
    void scatterPutsExactReconstructionOnTheDiagonal() {
        double[] y = {-1, 0, 2};
        Charts.Chart c = Charts.scatter(y, List.of("detached"), List.of(y.clone()), "y", "sum");
        for (Charts.Point p : c.series().get(1).marks()) {
            // on y = x: equal axes, so x pixel - left equals bottom - y pixel up to the plot's aspect ratio
            double fx = (p.x() - c.left()) / (c.right() - c.left());
            double fy = (c.bottom() - p.y()) / (c.bottom() - c.top());
            assertEquals(fx, fy, 1e-9);
        }
    }

    @Test
    void barsHaveOneBarPerLabel() {
        Charts.Chart c = Charts.bars(List.of("a", "b"), new double[]{1e-7, 1.0}, true, "x", "err");
        assertEquals(2, c.bars().size());
        assertTrue(c.bars().get(1).h() > c.bars().get(0).h());
    }

    static SteeringService.SweepCell cell(int layer, double s, Double score, double ppl) {
        return new SteeringService.SweepCell(layer, s, "x", 1, "length", score, ppl);
    }

    static SteeringService.SweepResult result(List<SteeringService.SweepCell> cells) {
        SteeringService.Continuation base = new SteeringService.Continuation("x", List.of(), "length", 2.0, -5.0);
        return new SteeringService.SweepResult(1, "m", "p", "c", 3, base, cells, 1);
    }

    @Test
    void sweepSuggestsTheMostOnConceptFluentSteeredCell() {
        SweepPage.Grid g = SweepPage.grid(result(List.of(cell(2, 0, -5.0, 2), cell(2, 4, -3.0, 3.9),
                cell(3, 0, -5.0, 2), cell(3, 4, -1.0, 100))));
        assertEquals(4, g.best().strength());
        assertEquals(2, g.best().layer());
        assertEquals(2, g.rows().size());
        assertEquals(List.of(0.0, 4.0), g.strengths());
    }

    @Test
    void sweepSuggestsNothingWhenNoSteeredCellBeatsTheBaseline() {
        SweepPage.Grid g = SweepPage.grid(result(List.of(cell(2, 0, -5.0, 2), cell(2, 4, -6.0, 2.5))));
        assertNull(g.best());
    }

    @Test
    void distributionDrawsEveryValueWithQuartileBoxAndMedianAtTheirHeights() {
        double[] a = {3.2, 1.5, 7.25, 4.0, 2.75, 9.5, 6.125}; // numpy.percentile: q1 2.975, median 4.0, q3 6.6875
        double[] b = {2.0, 1.0};                               // q1 1.25, median 1.5, q3 1.75
        Charts.Chart c = Charts.distribution(List.of("a", "b"), List.of(a, b),
                List.of(new int[]{0, 1, 2, 3, 4, 5, 6}, new int[]{0, 3}), "model", "stable rank");
        // the value axis, linear from 0: read a pixel back as a value
        double top = c.yTicks().get(c.yTicks().size() - 1).y();
        double hi = Double.parseDouble(c.yTicks().get(c.yTicks().size() - 1).label());
        java.util.function.DoubleUnaryOperator value = y -> hi * (c.bottom() - y) / (c.bottom() - top);
        List<Charts.Bar> bars = c.bars();
        assertEquals(4, bars.size(), "a box and a median bar per column");
        assertEquals(6.6875, value.applyAsDouble(bars.get(0).y()), 1e-9);
        assertEquals(2.975, value.applyAsDouble(bars.get(0).y() + bars.get(0).h()), 1e-9);
        assertEquals(4.0, value.applyAsDouble(bars.get(1).y() + 1), 1e-9, "the median bar is centred on the median");
        assertEquals(1.5, value.applyAsDouble(bars.get(3).y() + 1), 1e-9);
        assertEquals(1.75, value.applyAsDouble(bars.get(2).y()), 1e-9);
        for (int s = 0; s < 2; s++) {
            List<Charts.Point> p = c.series().get(s).marks();
            assertEquals(s == 0 ? a.length : b.length, p.size());
            for (Charts.Point q : p) {
                assertEquals(q.value(), value.applyAsDouble(q.y()), 1e-9);
                double center = c.xTicks().get(s).x();
                assertTrue(Math.abs(q.x() - center) < (c.right() - c.left()) / 2 * 0.25, "inside its column");
            }
        }
        assertEquals(3, c.series().get(1).marks().get(1).index(), "a point keeps its prompt index");
    }
}
