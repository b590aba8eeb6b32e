package lab.steering.service.generation;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import jakarta.transaction.Transactional;
import java.util.List;
import lab.steering.generate.Generation;
import lab.steering.generate.GenerationParams;
import lab.steering.model.LanguageModel;
import lab.steering.service.RunRecorder;
import lab.steering.service.Texts;
import lab.steering.service.models.Decoders;
import lab.steering.service.models.ModelRegistry;
import lab.steering.steer.SteeredRun;
import lab.steering.store.Columns;
import lab.steering.store.GenerationRun;
import lab.steering.store.Timestamps;

/** Plain generation: tokenize, decode, record the run. */
@ApplicationScoped
public class GenerationService {

    @Inject
    ObjectMapper json;

    @Inject
    Decoders decoders;
    @Inject
    ModelRegistry registry;

    /**
     * A generation as a client asks for it, its shape checked by the caller (a prompt, parameters within their
     * limits); a null model is the default one.
     */
    public record Spec(String model, String prompt, GenerationParams params) {
    }

    /**
     * A finished generation: the model it ran on, the parameters (their seed drawn when the request gave none) and the
     * stored run's id (null when the database was down).
     */
    public record Result(LanguageModel model, GenerationParams params, Generation generation, Long runId) {
    }

    /**
     * Resolves the model (404 unknown_model), encodes the prompt with room for a token in its context (400
     * invalid_prompt), decodes, and records the run: plain generation keeps working without the database.
     */
    public Result generate(Spec s) {
        LanguageModel model = registry.require(s.model());
        long[] ids = Texts.encode(model, s.prompt(), "prompt", 1);
        Generation g = generate(model, ids, s.params());
        Long runId = RunRecorder.unlessDatabaseDown("generation run", () -> record(model, s.prompt(), s.params(), g));
        return new Result(model, s.params(), g, runId);
    }

    /** Decodes as rows of the model's batched steps ({@link Decoders}): the tokens of an unbatched run. */
    public Generation generate(LanguageModel model, long[] promptIds, GenerationParams params) {
        SteeredRun.Decoding d = new SteeredRun.Decoding(model, promptIds, params, null, new long[0], 0, null);
        decoders.run(model, d);
        return d.result().generation();
    }

    @Transactional
    public long record(LanguageModel model, String prompt, GenerationParams params, Generation g) {
        GenerationRun run = new GenerationRun();
        run.createdAt = Timestamps.now();
        run.modelId = model.id();
        run.prompt = prompt;
        run.params = write(params);
        run.promptTokens = g.promptIds().length;
        run.completion = Columns.storable(g.completion());
        run.tokens = Columns.storableJson(write(g.tokens()));
        run.finishReason = g.finishReason().name();
        run.promptMs = g.promptMs();
        run.perTokenMs = g.perTokenMs();
        run.persist();
        return run.id;
    }

    public List<GenerationRun> recent(int limit) {
        return GenerationRun.find("order by createdAt desc, id desc").page(0, limit).list();
    }

    private String write(Object o) {
        try {
            return json.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

}
