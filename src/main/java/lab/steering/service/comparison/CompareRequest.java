package lab.steering.service.comparison;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * Body of POST /api/compare. Give {@code prompt} (one prompt, answered at once) or {@code prompts} (a batch, run as
 * a background job): a list of prompts or the string "default" (the 100 everyday phrases).
 *
 * @param models  model ids to compare, 1..8, distinct (required)
 * @param prompt  one prompt
 * @param prompts a list of 1..500 prompts, or "default"
 * @param dtype   "float32" (default) or "float64"
 * @param topK    singular values kept per token, 1..min(d, 64) for every model, default 8
 * @param vectors decoded singular vectors kept per spectrum, 1..8, default 3
 */
public record CompareRequest(List<String> models, String prompt, JsonNode prompts, String dtype, Integer topK,
                             Integer vectors) {
}
