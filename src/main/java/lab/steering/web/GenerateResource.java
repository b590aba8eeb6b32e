package lab.steering.web;

import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.ArrayList;
import java.util.List;
import lab.steering.config.LabConfig;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import lab.steering.service.Refusal;
import lab.steering.service.Texts;
import lab.steering.service.generation.GenerationService;
import lab.steering.service.models.ModelRegistry;

/** POST /api/generate: validate, delegate, shape the answer. */
@Path("/api/generate")
@Consumes(MediaType.APPLICATION_JSON)
@Produces(MediaType.APPLICATION_JSON)
public class GenerateResource {

    @Inject
    ModelRegistry registry;
    @Inject
    GenerationService generation;
    @Inject
    LabConfig config;

    /** A validated request: the model, the prompt's ids and the parameters. */
    public record Checked(LanguageModel model, String prompt, long[] promptIds, GenerationParams params) {
    }

    @POST
    public GenerateResponse generate(GenerateRequest req) {
        Checked c = check(req, registry, config);
        Generation g = generation.generate(c.model(), c.promptIds(), c.params());
        // plain generation keeps working without the database: the run is just not stored (runId null)
        Long runId = lab.steering.service.steering.RunRecorder.unlessDatabaseDown("generation run",
                () -> generation.record(c.model(), c.prompt(), c.params(), g));
        List<GenerateResponse.PromptToken> prompt = new ArrayList<>();
        for (int i = 0; i < g.promptIds().length; i++) {
            prompt.add(new GenerateResponse.PromptToken(g.promptIds()[i], g.promptPieces()[i]));
        }
        return new GenerateResponse(c.model().id(), prompt, g.completion(),
                g.tokens().stream().map(t -> new GenerateResponse.Token(t.id(), t.text(), t.logprob())).toList(),
                g.finishReason().name(), c.params().seed(),
                new GenerateResponse.Timings(g.promptMs(), g.perTokenMs()), runId);
    }

    /** Checks every field, naming the first bad one; shared by the JSON API and the page form. */
    public static Checked check(GenerateRequest req, ModelRegistry registry, LabConfig config) {
        if (req == null) {
            throw new Refusal(Refusal.Kind.INVALID, "missing_body", "a JSON body is required");
        }
        LanguageModel model = registry.require(req.model());
        if (req.prompt() == null || req.prompt().isEmpty()) {
            throw Refusal.invalidField("prompt", "must not be empty");
        }
        GenerationParams params = SteeringRequests.params(req.maxNewTokens(), 32, config.maxNewTokens(),
                req.temperature(), req.topK(), req.topP(), req.seed(), req.repetitionPenalty(),
                req.noRepeatNgramSize());
        long[] ids = Texts.encode(model, req.prompt(), "prompt", 1);
        return new Checked(model, req.prompt(), ids, params);
    }
}
