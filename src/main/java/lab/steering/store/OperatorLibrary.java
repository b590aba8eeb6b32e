package lab.steering.store;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.transaction.Transactional;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The operator library and the saved steering runs in PostgreSQL. No tensors here: an operator's data is the
 * safetensors file as bytes. Saving writes the row and its data in one transaction (a deferred trigger in V2 also
 * refuses any commit that would leave a row without matching data).
 */
@ApplicationScoped
public class OperatorLibrary {

    /**
     * Persists {@code record} (id, size and created time are set here) with {@code data} and its SHA-256 (hex, as the
     * caller computed it from the file format it knows), atomically.
     */
    @Transactional
    public OperatorRecord save(OperatorRecord record, byte[] data, String sha256) {
        record.id = null;
        record.sizeBytes = data.length;
        record.sha256 = sha256;
        record.createdAt = Timestamps.now();
        record.persist();
        OperatorData d = new OperatorData();
        d.operatorId = record.id;
        d.data = data;
        d.persist();
        return record;
    }

    @Transactional
    public Optional<OperatorRecord> find(long id) {
        return OperatorRecord.findByIdOptional(id);
    }

    /** The operator's safetensors bytes. */
    @Transactional
    public Optional<byte[]> data(long id) {
        return OperatorData.<OperatorData>findByIdOptional(id).map(d -> d.data);
    }

    /**
     * Operators, newest first: of {@code model} when given, and matching {@code q} (case-insensitive, in the name,
     * description, concept prompt or a tag) when given.
     */
    @Transactional
    public List<OperatorRecord> search(String model, String q, int limit) {
        return LibrarySearch.query(OperatorRecord.class, "steering_operator", List.of("name", "description", "concept_prompt"), model, q, limit);
    }

    /** Changes name, description and tags (null: unchanged). */
    @Transactional
    public Optional<OperatorRecord> patch(long id, String name, String description, List<String> tags) {
        Optional<OperatorRecord> r = OperatorRecord.findByIdOptional(id);
        r.ifPresent(o -> {
            if (name != null) {
                o.name = name;
            }
            if (description != null) {
                o.description = description;
            }
            if (tags != null) {
                o.tags = Columns.tags(tags);
            }
        });
        return r;
    }

    /** Deletes the operator and its data; runs that used it keep their content with operator_id set to null. */
    @Transactional
    public boolean delete(long id) {
        return OperatorRecord.deleteById(id);
    }

    @Transactional
    public long saveRun(SteeringRun run) {
        run.id = null;
        run.request = Columns.storableJson(run.request);
        run.normal = Columns.storableJson(run.normal);
        run.steered = Columns.storableJson(run.steered);
        run.diagnostics = Columns.storableJson(run.diagnostics);
        run.createdAt = Timestamps.now();
        run.persist();
        return run.id;
    }

    @Transactional
    public Optional<SteeringRun> run(long id) {
        return SteeringRun.findByIdOptional(id);
    }

    /** Runs, newest first, optionally of one model or one operator. */
    @Transactional
    public List<SteeringRun> runs(String model, Long operatorId, int limit) {
        StringBuilder q = new StringBuilder("1 = 1");
        List<Object> args = new ArrayList<>();
        if (model != null && !model.isBlank()) {
            args.add(model);
            q.append(" and modelId = ?").append(args.size());
        }
        if (operatorId != null) {
            args.add(operatorId);
            q.append(" and operatorId = ?").append(args.size());
        }
        q.append(" order by createdAt desc, id desc");
        return SteeringRun.<SteeringRun>find(q.toString(), args.toArray()).page(0, limit).list();
    }
}
