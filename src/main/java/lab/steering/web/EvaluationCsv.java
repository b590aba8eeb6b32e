package lab.steering.web;

import java.util.List;
import java.util.Locale;
import lab.steering.eval.OutputScores;
import lab.steering.service.evaluation.EvaluationService;

/** An evaluation's outputs as CSV (RFC 4180: fields with commas, quotes or line breaks quoted, quotes doubled). */
final class EvaluationCsv {

    static final List<String> COLUMNS = List.of("evaluation", "model", "method", "split", "chosen", "strength",
            "layer", "concept", "concept_index", "prompt_index", "prompt", "text", "tokens", "hits", "concept_log_prob",
            "concept_similarity", "perplexity", "perplexity_ratio", "repetition", "distinct2", "relevance", "concept_score",
            "fluency_score", "relevance_score", "aggregate");

    private EvaluationCsv() {
    }

    static String of(EvaluationService.View v) {
        StringBuilder b = new StringBuilder(String.join(",", COLUMNS)).append("\r\n");
        for (EvaluationService.MethodView m : v.methods()) {
            for (EvaluationService.Row r : m.rows()) {
                OutputScores s = r.scores();
                Object[] cells = {v.id(), v.model(), m.method(), r.split(), r.chosen(), r.strength(), r.layer(),
                    r.conceptName(), r.concept(), r.prompt(), r.promptText(), r.text(), r.tokens(), s.hits(),
                    s.conceptLogProb(), s.conceptSimilarity(), s.perplexity(), s.perplexityRatio(), s.repetition(),
                    s.distinct2(), s.relevance(), s.concept(), s.fluency(), s.promptRelevance(), s.aggregate()};
                for (int i = 0; i < cells.length; i++) {
                    if (i > 0) {
                        b.append(',');
                    }
                    b.append(cell(cells[i]));
                }
                b.append("\r\n");
            }
        }
        return b.toString();
    }

    static String cell(Object o) {
        if (o == null) {
            return "";
        }
        String s = o instanceof Double d ? String.format(Locale.ROOT, "%.6g", d) : o.toString();
        if (s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r")) {
            return "\"" + s.replace("\"", "\"\"") + "\"";
        }
        return s;
    }
}
