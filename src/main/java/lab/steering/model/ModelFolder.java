package lab.steering.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * What a model folder says about itself without loading it: its config.json and the sizes of its files. Reading
 * one costs a few small file reads (no tensor data), so every folder can be scanned at start and loaded later.
 * {@link LanguageModel#load} checks everything else (the safetensors headers, every tensor's shape, the tokenizer).
 *
 * @param config      config.json, read and checked as {@link ModelConfig#read} does
 * @param weightFiles model.safetensors, or the shards model.safetensors.index.json names (sorted)
 * @param weightBytes their total size on disk
 * @param signature   {@link #signature(Path)} when scanned: it changes when the folder is rewritten
 */
public record ModelFolder(Path folder, ModelConfig config, List<Path> weightFiles, long weightBytes,
                          String signature) {


    /** Scans {@code folder}; a {@link ModelLoadException} names the file and the problem. */
    public static ModelFolder scan(Path folder) {
        ModelConfig config = ModelConfig.read(folder);
        Path tokenizer = folder.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizer)) {
            throw new ModelLoadException(tokenizer, "missing (a Hugging Face model folder needs tokenizer.json)");
        }
        List<Path> files = weightFiles(folder);
        long bytes = 0;
        for (Path p : files) {
            try {
                bytes += Files.size(p);
            } catch (IOException e) {
                throw new ModelLoadException(p, "cannot read its size: " + e.getMessage(), e);
            }
        }
        return new ModelFolder(folder, config, List.copyOf(files), bytes, signature(folder));
    }

    /**
     * The names, sizes and modification times of the folder's files (links followed): it changes when the folder
     * is rewritten. Empty when the folder cannot be listed.
     */
    public static String signature(Path folder) {
        StringBuilder sig = new StringBuilder();
        try (Stream<Path> s = Files.list(folder)) {
            for (Path p : s.sorted().toList()) {
                if (Files.isRegularFile(p)) {
                    sig.append(p.getFileName()).append(':').append(Files.size(p)).append(':')
                            .append(Files.getLastModifiedTime(p).toMillis()).append(';');
                }
            }
        } catch (IOException e) {
            return "";
        }
        return sig.toString();
    }

    private static List<Path> weightFiles(Path folder) {
        Path single = folder.resolve("model.safetensors");
        if (Files.isRegularFile(single)) {
            return List.of(single);
        }
        Path index = folder.resolve("model.safetensors.index.json");
        if (!Files.isRegularFile(index)) {
            throw new ModelLoadException(single, "missing (nor is there a model.safetensors.index.json)");
        }
        TreeSet<String> shards = new TreeSet<>();
        SafetensorsReader.weightMap(index).elements().forEachRemaining(n -> shards.add(n.asText()));
        List<Path> out = new ArrayList<>();
        for (String s : shards) {
            out.add(SafetensorsReader.shard(folder, index, s));
        }
        return out;
    }
}
