package lab.steering.train;

import java.util.List;

/**
 * One corpus document: a source (brown, kjv, fortunes, nlp-corpus), a subset inside it (Brown genre, KJV book,
 * fortune file, nlp-corpus folder), a stable id, and its paragraphs (no paragraph is empty or contains a newline).
 */
public record Doc(String source, String subset, String id, List<String> paragraphs) {

    public Doc {
        paragraphs = List.copyOf(paragraphs);
    }

    /** The document text as written to train.txt / valid.txt: paragraphs joined by single newlines. */
    public String text() {
        return String.join("\n", paragraphs);
    }
}
