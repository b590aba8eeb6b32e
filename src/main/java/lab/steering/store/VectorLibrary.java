package lab.steering.store;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.transaction.Transactional;
import java.util.List;
import java.util.Optional;

/**
 * The saved steering vectors in PostgreSQL, as {@link OperatorLibrary} keeps the operators: a row and its data (the
 * GGUF control vector file as bytes) written in one transaction, checked at commit by V6's deferred trigger.
 */
@ApplicationScoped
public class VectorLibrary {

    /**
     * Persists {@code record} (id, size and created time are set here) with {@code data} and its SHA-256 (hex, as the
     * caller computed it from the file format it knows), atomically.
     */
    @Transactional
    public VectorRecord save(VectorRecord record, byte[] data, String sha256) {
        record.id = null;
        record.sizeBytes = data.length;
        record.sha256 = sha256;
        record.createdAt = Timestamps.now();
        record.persist();
        VectorData d = new VectorData();
        d.vectorId = record.id;
        d.data = data;
        d.persist();
        return record;
    }

    @Transactional
    public Optional<VectorRecord> find(long id) {
        return VectorRecord.findByIdOptional(id);
    }

    /** The vector's GGUF bytes. */
    @Transactional
    public Optional<byte[]> data(long id) {
        return VectorData.<VectorData>findByIdOptional(id).map(d -> d.data);
    }

    /**
     * Vectors, newest first: of {@code model} when given, and matching {@code q} (case-insensitive, in the name,
     * description, concept or contrast prompt or a tag) when given.
     */
    @Transactional
    public List<VectorRecord> search(String model, String q, int limit) {
        return LibrarySearch.query(VectorRecord.class, "steering_vector", List.of("name", "description", "concept_prompt", "contrast_prompt"), model, q, limit);
    }

    /** Changes name, description and tags (null: unchanged). */
    @Transactional
    public Optional<VectorRecord> patch(long id, String name, String description, List<String> tags) {
        Optional<VectorRecord> r = VectorRecord.findByIdOptional(id);
        r.ifPresent(v -> {
            v.name = name != null ? name : v.name;
            v.description = description != null ? description : v.description;
            v.tags = tags != null ? Columns.tags(tags) : v.tags;
        });
        return r;
    }

    /** Deletes the vector and its data; runs that used it keep their content with vector_id set to null. */
    @Transactional
    public boolean delete(long id) {
        return VectorRecord.deleteById(id);
    }
}
