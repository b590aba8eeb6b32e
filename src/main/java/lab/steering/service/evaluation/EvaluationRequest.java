package lab.steering.service.evaluation;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * Body of POST /api/evaluations (docs/evaluation.md). Every field is optional.
 *
 * @param suite          a suite given inline (the JSON GET /api/suites/{id} exports); not with suiteId
 * @param suiteId        a stored suite (POST /api/suites); neither: the default suite, "everyday"
 * @param concepts       run only the suite's first N concepts (a smaller run of the same suite)
 * @param prompts        run only the suite's first N prompts (at least 2)
 * @param model          a loaded model (default: the app's default model)
 * @param methods        among none, prompting, actadd, operator, operator-lowrank (default: all; none always runs)
 * @param strengths      1 to 8 strengths tried per steered method (default 1, 2, 4)
 * @param layers         1 to 4 split layers tried per steered method (default: the model's 2L/3)
 * @param maxNewTokens   tokens per continuation, 1..128 (default 24)
 * @param seed           the seed of the prompt split, of sampling and of the bootstrap (default 7)
 * @param temperature    0 (greedy, the default) to 2
 * @param selectFraction share of the prompts that chooses each method's strength and layer, 0.05..0.95 (default 0.3)
 * @param rank           the low-rank operator's rank, 1..d (default 8)
 * @param resamples      bootstrap resamples, 100..10000 (default 1000)
 */
public record EvaluationRequest(JsonNode suite, Long suiteId, Integer concepts, Integer prompts, String model,
                                List<String> methods, List<Double> strengths, List<Integer> layers,
                                Integer maxNewTokens, Long seed, Double temperature, Double selectFraction,
                                Integer rank, Integer resamples) {
}
