package lab.steering.web;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import lab.steering.service.steering.SteeringService;
import lab.steering.steer.SteeredRun;

/**
 * Normal and steered continuations side by side, as the Steer and Runs pages show them: each token knows whether it
 * lies at or after the first position where the two differ, and a steered token carries its diagnostics step.
 */
public record Comparison(Long runId, String model, String kind, Long operatorId, String concept, String prompt,
                         int layer, double strength, SteeringService.Continuation normal,
                         SteeringService.Continuation steered, SteeringService.Diagnostics diagnostics,
                         int divergeAt) {

    /** One token of a continuation. */
    public record Tok(int index, String text, boolean diverged, SteeredRun.Step step) {
        /** A one-line summary for the hover title: injected norm and the biggest probability shifts. */
        public String summary() {
            if (step == null) {
                return "";
            }
            StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "#%d added |Δh|=%.3g (residual %.3g), KL %.3g",
                    index, step.addedNorm(), step.residualNorm(), step.kl()));
            if (step.raised() != null && !step.raised().isEmpty()) {
                b.append("; raised: ");
                step.raised().forEach(s -> b.append(String.format(Locale.ROOT, "%s %.2f→%.2f ", s.text(), s.before(), s.after())));
            }
            if (step.lowered() != null && !step.lowered().isEmpty()) {
                b.append("; lowered: ");
                step.lowered().forEach(s -> b.append(String.format(Locale.ROOT, "%s %.2f→%.2f ", s.text(), s.before(), s.after())));
            }
            return b.toString().trim();
        }
    }

    public static Comparison of(Long runId, String model, String kind, Long operatorId, String concept, String prompt,
                                int layer, double strength, SteeringService.Continuation normal,
                                SteeringService.Continuation steered, SteeringService.Diagnostics diagnostics) {
        int n = Math.min(normal.tokens().size(), steered.tokens().size());
        int at = n;
        for (int i = 0; i < n; i++) {
            if (normal.tokens().get(i).id() != steered.tokens().get(i).id()) {
                at = i;
                break;
            }
        }
        if (at == n && normal.tokens().size() == steered.tokens().size()) {
            at = -1; // identical
        }
        return new Comparison(runId, model, kind, operatorId, concept, prompt, layer, strength, normal, steered,
                diagnostics, at);
    }

    public boolean identical() {
        return divergeAt < 0;
    }

    public List<Tok> normalTokens() {
        return tokens(normal, null);
    }

    public List<Tok> steeredTokens() {
        return tokens(steered, diagnostics == null ? null : diagnostics.steps());
    }

    private List<Tok> tokens(SteeringService.Continuation c, List<SteeredRun.Step> steps) {
        List<Tok> out = new ArrayList<>();
        for (int i = 0; i < c.tokens().size(); i++) {
            SteeredRun.Step step = steps != null && i < steps.size() ? steps.get(i) : null;
            out.add(new Tok(i, c.tokens().get(i).text(), divergeAt >= 0 && i >= divergeAt, step));
        }
        return out;
    }

    public List<SteeredRun.Step> steps() {
        return diagnostics == null || diagnostics.steps() == null ? List.of() : diagnostics.steps();
    }
}
