package lab.steering.hook;

/**
 * A typed intervention site: a point in a given layer ({@code layer = -1} for the points that are not per layer).
 * Its {@link #name()} is TransformerLens's, e.g. {@code blocks.3.hook_resid_pre}.
 */
public record Site(int layer, Point point) {

    public Site {
        if (point.perLayer() ? layer < 0 : layer != -1) {
            throw new IllegalArgumentException(point + (point.perLayer() ? " needs a layer >= 0" : " has no layer"));
        }
    }

    public static Site embed() {
        return new Site(-1, Point.EMBED);
    }

    public static Site finalNorm() {
        return new Site(-1, Point.FINAL_NORM);
    }

    public static Site residPre(int layer) {
        return new Site(layer, Point.RESID_PRE);
    }

    public static Site residPost(int layer) {
        return new Site(layer, Point.RESID_POST);
    }

    public static Site attnOut(int layer) {
        return new Site(layer, Point.ATTN_OUT);
    }

    public static Site mlpOut(int layer) {
        return new Site(layer, Point.MLP_OUT);
    }

    public String name() {
        return point.perLayer() ? "blocks." + layer + "." + point.hookName() : point.hookName();
    }

    /** Parses a name as {@link #name()} writes it. */
    public static Site parse(String name) {
        for (Point p : Point.values()) {
            if (!p.perLayer() && name.equals(p.hookName())) {
                return new Site(-1, p);
            }
            String suffix = "." + p.hookName();
            if (p.perLayer() && name.startsWith("blocks.") && name.endsWith(suffix)) {
                String mid = name.substring("blocks.".length(), name.length() - suffix.length());
                try {
                    return new Site(Integer.parseInt(mid), p);
                } catch (NumberFormatException e) {
                    break;
                }
            }
        }
        throw new IllegalArgumentException("unknown hook site '" + name + "'");
    }

    @Override
    public String toString() {
        return name();
    }
}
