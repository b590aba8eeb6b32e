package lab.steering.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.util.ArrayList;
import java.util.List;
import lab.steering.SharedModels;
import lab.steering.generate.Generator;
import lab.steering.hook.Hook;
import lab.steering.hook.Hooks;
import lab.steering.hook.Point;
import lab.steering.hook.Site;
import lab.steering.testing.SafetensorsTestReader;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class HooksTest {

    static LanguageModel model;

    @BeforeAll
    static void load() {
        model = LanguageModel.load(SharedModels.require(SharedModels.STORIES), Device.cpu());
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    @Test
    void siteNamesFollowTransformerLensAndParseBack() {
        assertEquals("blocks.3.hook_resid_pre", Site.residPre(3).name());
        assertEquals("hook_embed", Site.embed().name());
        for (List<Site> sites : Hooks.sitesOf(5).values()) {
            for (Site s : sites) {
                assertEquals(s, Site.parse(s.name()));
            }
        }
    }

    @Test
    void everySiteIsVisitedOnceInForwardOrderWithItsShape() {
        List<String> seen = new ArrayList<>();
        Hook record = (site, x, ctx) -> {
            seen.add(site.name() + x.getShape());
            return x;
        };
        Hooks.Builder b = Hooks.builder();
        Hooks.sitesOf(model.config().numLayers()).values().forEach(l -> l.forEach(s -> b.add(s, record)));
        long[] ids = {1, 403, 20, 9};
        double[][] plain = Generator.allLogits(model, ids, Hooks.NONE);
        double[][] hooked = Generator.allLogits(model, ids, b.build());
        assertArrayEquals(plain[3], hooked[3], 0.0, "read-only hooks must not change the output");
        assertEquals(3 + 5 * 9, seen.size());
        assertEquals(List.of("hook_embed(1, 4, 64)", "blocks.0.hook_resid_pre(1, 4, 64)",
                "blocks.0.ln1.hook_scale(1, 4, 1)", "blocks.0.attn.hook_pattern(1, 8, 4, 4)",
                "blocks.0.hook_attn_out(1, 4, 64)", "blocks.0.hook_resid_mid(1, 4, 64)",
                "blocks.0.ln2.hook_scale(1, 4, 1)", "blocks.0.mlp.hook_gate(1, 4, 172)",
                "blocks.0.hook_mlp_out(1, 4, 64)", "blocks.0.hook_resid_post(1, 4, 64)"), seen.subList(0, 10));
        assertEquals(List.of("ln_final.hook_scale(1, 4, 1)", "ln_final.hook_normalized(1, 4, 64)"),
                seen.subList(seen.size() - 2, seen.size()));
    }

    /**
     * The residual sites read what Hugging Face calls hidden_states: {@code hook_resid_pre} of layer l is
     * hidden_states[l], {@code hook_resid_post} of layer l is hidden_states[l + 1] (l + 1 < L) and
     * {@code ln_final.hook_normalized} is hidden_states[L] (after the final norm). The numbers come from transformers'
     * own forward pass in float64 ({@code scripts/reference/detached_jacobian.py}); the model is loaded in float64
     * here, so 1e-10 relative to the largest entry (observed ~1e-16) leaves no room for a site one op early or late.
     */
    @Test
    void residualHooksSeeHuggingFaceHiddenStates() throws java.io.IOException {
        java.nio.file.Path dir = java.nio.file.Path.of("src", "test", "resources", "reference", "detached");
        SafetensorsTestReader.Tensor hf = SafetensorsTestReader.readFile(dir.resolve("hidden-tinystories-shared.safetensors"))
                .get("hidden_states");
        int layers = model.config().numLayers();
        int t = hf.dim(1);
        int d = hf.dim(2);
        assertEquals(layers + 1, hf.dim(0));
        java.util.Map<String, double[]> seen = new java.util.HashMap<>();
        Hooks.Builder b = Hooks.builder();
        for (int l = 0; l < layers; l++) {
            b.add(Site.residPre(l), record(seen));
            b.add(Site.residPost(l), record(seen));
        }
        b.add(Site.finalNorm(), record(seen));
        try (LanguageModel m64 = LanguageModel.load(SharedModels.require(SharedModels.STORIES), Device.cpu(),
                ai.djl.ndarray.types.DataType.FLOAT64)) {
            Generator.allLogits(m64, new long[] {1, 403, 20}, b.build());
        }
        java.util.Map<String, Integer> expected = new java.util.LinkedHashMap<>(); // site -> index into hidden_states
        for (int l = 0; l < layers; l++) {
            expected.put(Site.residPre(l).name(), l);
            if (l + 1 < layers) {
                expected.put(Site.residPost(l).name(), l + 1);
            }
        }
        expected.put(Site.finalNorm().name(), layers);
        for (var e : expected.entrySet()) {
            int l = e.getValue();
            double[] want = java.util.Arrays.copyOfRange(hf.data(), l * t * d, (l + 1) * t * d);
            double[] got = seen.get(e.getKey());
            double diff = 0;
            double scale = 0;
            for (int i = 0; i < want.length; i++) {
                diff = Math.max(diff, Math.abs(got[i] - want[i]));
                scale = Math.max(scale, Math.abs(want[i]));
            }
            assertTrue(diff <= 1e-10 * scale, e.getKey() + " differs from HF hidden_states[" + l + "] by " + diff
                    + " (largest entry " + scale + ")");
        }
    }

    private static Hook record(java.util.Map<String, double[]> into) {
        return (site, x, ctx) -> {
            into.put(site.name(), x.toType(ai.djl.ndarray.types.DataType.FLOAT64, false).toDoubleArray());
            return x;
        };
    }

    @Test
    void aHookCanChangeTheActivation() {
        long[] ids = {1, 403, 20, 9};
        Hook zeroMlp = (site, x, ctx) -> x.zerosLike();
        double[][] plain = Generator.allLogits(model, ids, Hooks.NONE);
        double[][] ablated = Generator.allLogits(model, ids, Hooks.builder()
                .add(new Site(2, Point.MLP_OUT), zeroMlp).build());
        assertNotEquals(plain[3][0], ablated[3][0]);
        // scaling the embedding by 1 is the identity, exactly
        Hook identity = (site, x, ctx) -> x.mul(1.0f);
        double[][] same = Generator.allLogits(model, ids, Hooks.builder().add(Site.embed(), identity).build());
        assertArrayEquals(plain[3], same[3], 0.0);
    }

    @Test
    void hookContextGivesAbsolutePositionsWithTheCache() {
        List<Integer> starts = new ArrayList<>();
        Hook h = (site, x, ctx) -> {
            starts.add(ctx.start());
            return x;
        };
        long[] prompt = {1, 403, 20};
        Generator.generate(model, prompt, lab.steering.generate.GenerationParams.greedy(3),
                Hooks.builder().add(Site.embed(), h).build());
        assertEquals(List.of(0, 3, 4), starts);
    }

}
