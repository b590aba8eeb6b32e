package lab.steering.web;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Geometry of the server-side SVG charts: plain records of pixel coordinates that the templates turn into SVG
 * elements (so every label goes through Qute's escaping), each point keeping its value for a title and data-*.
 */
public final class Charts {
    private Charts() {
    }

    public static final int WIDTH = 640;
    public static final int HEIGHT = 260;
    static final int LEFT = 58;
    static final int RIGHT = 12;
    static final int TOP = 12;
    static final int BOTTOM = 34;
    static final String[] COLORS = {"#b3541e", "#1f6fb2", "#2b8a3e", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d",
        "#d35400", "#2c3e50", "#27ae60"};

    public record Point(double x, double y, String label, double value, int index) {
    }

    public record Series(String name, String color, String points, List<Point> marks) {
    }

    public record Bar(double x, double y, double w, double h, String label, double value, String color) {
    }

    public record Tick(double x, double y, String label) {
    }

    /** A chart: line series and/or bars, with the axes' ticks. */
    public record Chart(int width, int height, String xLabel, String yLabel, List<Series> series, List<Bar> bars,
                        List<Tick> xTicks, List<Tick> yTicks, double left, double bottom, double right, double top) {
    }

    /** Value axis, linear or log10, mapping a value to a y pixel. */
    record Axis(double lo, double hi, boolean log) {
        static Axis of(double[] values, boolean log) {
            double lo = Double.POSITIVE_INFINITY;
            double hi = Double.NEGATIVE_INFINITY;
            for (double v : values) {
                if (!Double.isFinite(v) || (log && v <= 0)) {
                    continue;
                }
                double t = log ? Math.log10(v) : v;
                lo = Math.min(lo, t);
                hi = Math.max(hi, t);
            }
            if (!Double.isFinite(lo)) {
                lo = 0;
                hi = 1;
            }
            if (log) {
                lo = Math.floor(lo);
                hi = Math.ceil(hi);
            } else {
                lo = Math.min(0, lo);
            }
            if (hi <= lo) {
                hi = lo + 1;
            }
            return new Axis(lo, hi, log);
        }

        double y(double v) {
            double t = log ? (v > 0 ? Math.log10(v) : lo) : v;
            t = Math.max(lo, Math.min(hi, t));
            return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (t - lo) / (hi - lo));
        }

        List<Tick> ticks() {
            List<Tick> out = new ArrayList<>();
            if (log) {
                int step = (int) Math.max(1, Math.ceil((hi - lo) / 8));
                for (int e = (int) lo; e <= hi; e += step) {
                    out.add(new Tick(LEFT, y(Math.pow(10, e)), "1e" + e));
                }
            } else {
                for (int i = 0; i <= 4; i++) {
                    double v = lo + (hi - lo) * i / 4;
                    out.add(new Tick(LEFT, y(v), fmt(v)));
                }
            }
            return out;
        }
    }

    static String fmt(double v) {
        if (v == 0) {
            return "0";
        }
        double a = Math.abs(v);
        return a >= 1e4 || a < 1e-2 ? String.format(Locale.ROOT, "%.2e", v) : String.format(Locale.ROOT, "%.3g", v);
    }

    /**
     * Lines: series i has the values {@code values[i]} at x = 1..n (e.g. singular values by index), y linear or log.
     */
    public static Chart lines(List<String> names, List<double[]> values, boolean log, String xLabel, String yLabel) {
        int n = values.stream().mapToInt(v -> v.length).max().orElse(1);
        Axis axis = Axis.of(values.stream().flatMapToDouble(java.util.Arrays::stream).toArray(), log);
        double plotW = WIDTH - LEFT - RIGHT;
        List<Series> series = new ArrayList<>();
        for (int s = 0; s < values.size(); s++) {
            double[] v = values.get(s);
            StringBuilder pts = new StringBuilder();
            List<Point> marks = new ArrayList<>();
            for (int i = 0; i < v.length; i++) {
                double x = LEFT + (n == 1 ? plotW / 2 : plotW * i / (n - 1));
                double y = axis.y(v[i]);
                pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
                marks.add(new Point(x, y, names.get(s) + " #" + (i + 1) + " = " + fmt(v[i]), v[i], i + 1));
            }
            series.add(new Series(names.get(s), COLORS[s % COLORS.length], pts.toString().trim(), marks));
        }
        List<Tick> xTicks = new ArrayList<>();
        int step = Math.max(1, n / 10);
        for (int i = 0; i < n; i += step) {
            xTicks.add(new Tick(LEFT + (n == 1 ? plotW / 2 : plotW * i / (n - 1)), HEIGHT - BOTTOM, Integer.toString(i + 1)));
        }
        return new Chart(WIDTH, HEIGHT, xLabel, yLabel, series, List.of(), xTicks, axis.ticks(), LEFT, HEIGHT - BOTTOM,
                WIDTH - RIGHT, TOP);
    }

    /** Largest number of points per series a scatter draws (every k-th coordinate beyond it). */
    public static final int MAX_SCATTER_POINTS = 512;

    /**
     * Scatter of {@code ys[s][r]} against {@code x[r]} per series s (e.g. the reconstruction against the output y,
     * coordinate by coordinate), on equal linear axes, with the diagonal y = x as the first series' guide line.
     */
    public static Chart scatter(double[] x, List<String> names, List<double[]> ys, String xLabel, String yLabel) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (double v : x) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        for (double[] y : ys) {
            for (double v : y) {
                if (Double.isFinite(v)) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        if (!(hi > lo)) {
            hi = lo + 1;
        }
        double pad = (hi - lo) * 0.05;
        final double min = lo - pad;
        final double max = hi + pad;
        double plotW = WIDTH - LEFT - RIGHT;
        double plotH = HEIGHT - TOP - BOTTOM;
        java.util.function.DoubleUnaryOperator px = v -> LEFT + plotW * (v - min) / (max - min);
        java.util.function.DoubleUnaryOperator py = v -> TOP + plotH * (1 - (Math.max(min, Math.min(max, v)) - min)
                / (max - min));
        int step = Math.max(1, (int) Math.ceil(x.length / (double) MAX_SCATTER_POINTS));
        List<Series> series = new ArrayList<>();
        series.add(new Series("y = x", "#999", String.format(Locale.ROOT, "%.1f,%.1f %.1f,%.1f",
                px.applyAsDouble(min), py.applyAsDouble(min), px.applyAsDouble(max), py.applyAsDouble(max)), List.of()));
        for (int s = 0; s < ys.size(); s++) {
            double[] y = ys.get(s);
            List<Point> marks = new ArrayList<>();
            for (int r = 0; r < x.length; r += step) {
                marks.add(new Point(px.applyAsDouble(x[r]), py.applyAsDouble(y[r]), names.get(s) + " [" + r + "]: y = "
                        + fmt(x[r]) + ", reconstruction = " + fmt(y[r]), y[r], r));
            }
            series.add(new Series(names.get(s), COLORS[(s + 1) % COLORS.length], "", marks));
        }
        List<Tick> xTicks = new ArrayList<>();
        List<Tick> yTicks = new ArrayList<>();
        for (int i = 0; i <= 4; i++) {
            double v = min + (max - min) * i / 4;
            xTicks.add(new Tick(px.applyAsDouble(v), HEIGHT - BOTTOM, fmt(v)));
            yTicks.add(new Tick(LEFT, py.applyAsDouble(v), fmt(v)));
        }
        return new Chart(WIDTH, HEIGHT, xLabel, yLabel, series, List.of(), xTicks, yTicks, LEFT, HEIGHT - BOTTOM,
                WIDTH - RIGHT, TOP);
    }

    /** A point of a labelled scatter: its series, coordinates, hover label, and whether it is marked. */
    public record Labelled(String series, double x, double y, String label, boolean marked) {
    }

    /**
     * Labelled points on fixed axes [0, 1] x [0, 1] (scores), one series per distinct series name in order of first
     * appearance, joined by a line in the given order (e.g. increasing strength), and a last series "chosen" with
     * the marked points again (the template rings them).
     */
    public static Chart unitScatter(List<Labelled> points, String xLabel, String yLabel) {
        double plotW = WIDTH - LEFT - RIGHT;
        double plotH = HEIGHT - TOP - BOTTOM;
        java.util.function.DoubleUnaryOperator px = v -> LEFT + plotW * Math.max(0, Math.min(1, v));
        java.util.function.DoubleUnaryOperator py = v -> TOP + plotH * (1 - Math.max(0, Math.min(1, v)));
        java.util.Map<String, List<Point>> bySeries = new java.util.LinkedHashMap<>();
        List<Point> marked = new ArrayList<>();
        for (int i = 0; i < points.size(); i++) {
            Labelled l = points.get(i);
            Point pt = new Point(px.applyAsDouble(l.x()), py.applyAsDouble(l.y()), l.label(), l.y(), i);
            bySeries.computeIfAbsent(l.series(), k -> new ArrayList<>()).add(pt);
            if (l.marked()) {
                marked.add(pt);
            }
        }
        List<Series> series = new ArrayList<>();
        int s = 0;
        for (var e : bySeries.entrySet()) {
            StringBuilder line = new StringBuilder();
            if (e.getValue().size() > 1) {
                for (Point pt : e.getValue()) {
                    line.append(String.format(Locale.ROOT, "%.1f,%.1f ", pt.x(), pt.y()));
                }
            }
            series.add(new Series(e.getKey(), COLORS[s++ % COLORS.length], line.toString().trim(), e.getValue()));
        }
        series.add(new Series("chosen", "#000", "", marked));
        List<Tick> xTicks = new ArrayList<>();
        List<Tick> yTicks = new ArrayList<>();
        for (int i = 0; i <= 4; i++) {
            double v = i / 4.0;
            xTicks.add(new Tick(px.applyAsDouble(v), HEIGHT - BOTTOM, fmt(v)));
            yTicks.add(new Tick(LEFT, py.applyAsDouble(v), fmt(v)));
        }
        return new Chart(WIDTH, HEIGHT, xLabel, yLabel, series, List.of(), xTicks, yTicks, LEFT, HEIGHT - BOTTOM,
                WIDTH - RIGHT, TOP);
    }

    /** Bars, one per label, y linear or log (a log bar starts at the axis' lowest decade). */
    public static Chart bars(List<String> labels, double[] values, boolean log, String xLabel, String yLabel) {
        Axis axis = Axis.of(values, log);
        double plotW = WIDTH - LEFT - RIGHT;
        double slot = plotW / Math.max(1, values.length);
        double base = HEIGHT - BOTTOM;
        List<Bar> bars = new ArrayList<>();
        List<Tick> xTicks = new ArrayList<>();
        for (int i = 0; i < values.length; i++) {
            double x = LEFT + slot * i + slot * 0.15;
            double y = axis.y(values[i]);
            bars.add(new Bar(x, y, slot * 0.7, Math.max(0.5, base - y), labels.get(i), values[i],
                    COLORS[i % COLORS.length]));
            xTicks.add(new Tick(LEFT + slot * (i + 0.5), base, labels.get(i)));
        }
        return new Chart(WIDTH, HEIGHT, xLabel, yLabel, List.of(), bars, xTicks, axis.ticks(), LEFT, base,
                WIDTH - RIGHT, TOP);
    }

    /**
     * Distributions side by side, one column per name (e.g. a model's stable ranks over prompts): every value a point
     * (spread sideways by a fixed golden-ratio sequence, so the same data always draws the same), over a box from the
     * first to the third quartile and a dark bar at the median (quartiles by linear interpolation). y is linear.
     *
     * @param indices per column, the index each value is labelled with (e.g. the prompt's), same lengths as values
     */
    public static Chart distribution(List<String> names, List<double[]> values, List<int[]> indices, String xLabel,
                                     String yLabel) {
        Axis axis = Axis.of(values.stream().flatMapToDouble(java.util.Arrays::stream).toArray(), false);
        double plotW = WIDTH - LEFT - RIGHT;
        double slot = plotW / Math.max(1, names.size());
        List<Series> series = new ArrayList<>();
        List<Bar> bars = new ArrayList<>();
        List<Tick> xTicks = new ArrayList<>();
        for (int m = 0; m < names.size(); m++) {
            double center = LEFT + slot * (m + 0.5);
            String color = COLORS[m % COLORS.length];
            double[] v = values.get(m);
            xTicks.add(new Tick(center, HEIGHT - BOTTOM, names.get(m)));
            if (v.length > 0) {
                double[] sorted = v.clone();
                java.util.Arrays.sort(sorted);
                double q1 = quantile(sorted, 0.25);
                double median = quantile(sorted, 0.5);
                double q3 = quantile(sorted, 0.75);
                bars.add(new Bar(center - slot * 0.25, axis.y(q3), slot * 0.5, Math.max(0.5, axis.y(q1) - axis.y(q3)),
                        names.get(m) + " quartiles " + fmt(q1) + " to " + fmt(q3), q3 - q1, color + "33"));
                bars.add(new Bar(center - slot * 0.3, axis.y(median) - 1, slot * 0.6, 2, names.get(m) + " median "
                        + fmt(median), median, "#222"));
            }
            List<Point> marks = new ArrayList<>();
            for (int i = 0; i < v.length; i++) {
                double jitter = ((i * 0.6180339887) % 1.0 - 0.5) * slot * 0.4;
                int index = indices.get(m)[i];
                marks.add(new Point(center + jitter, axis.y(v[i]), names.get(m) + " #" + index + " = " + fmt(v[i]),
                        v[i], index));
            }
            series.add(new Series(names.get(m), color, "", marks));
        }
        return new Chart(WIDTH, HEIGHT, xLabel, yLabel, series, bars, xTicks, axis.ticks(), LEFT, HEIGHT - BOTTOM,
                WIDTH - RIGHT, TOP);
    }

    /** The q-quantile of sorted values, linear interpolation between order statistics (numpy's default). */
    static double quantile(double[] sorted, double q) {
        double h = (sorted.length - 1) * q;
        int lo = (int) Math.floor(h);
        int hi = Math.min(sorted.length - 1, lo + 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }
}
