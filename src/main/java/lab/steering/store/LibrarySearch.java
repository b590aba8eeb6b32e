package lab.steering.store;

import io.quarkus.hibernate.orm.panache.Panache;
import jakarta.persistence.Query;
import java.util.ArrayList;
import java.util.List;

/** The library's listing, shared by operators and vectors: newest first, of one model, matching a text. */
final class LibrarySearch {

    private LibrarySearch() {
    }

    /**
     * Rows of {@code table} (mapped to {@code entity}), newest first: of {@code model} when given, and matching
     * {@code q} (case-insensitive, in any of {@code columns} or a tag) when given. Runs in the caller's transaction.
     */
    @SuppressWarnings("unchecked")
    static <T> List<T> query(Class<T> entity, String table, List<String> columns, String model, String q, int limit) {
        StringBuilder sql = new StringBuilder("SELECT * FROM " + table + " WHERE true");
        List<Object> args = new ArrayList<>();
        if (model != null && !model.isBlank()) {
            args.add(model);
            sql.append(" AND model_id = ?").append(args.size());
        }
        if (q != null && !q.isBlank()) {
            args.add(Columns.likePattern(q));
            String p = " ILIKE ?" + args.size();
            sql.append(" AND (array_to_string(tags, ' ')").append(p);
            for (String c : columns) {
                sql.append(" OR ").append(c).append(p);
            }
            sql.append(")");
        }
        sql.append(" ORDER BY created_at DESC, id DESC LIMIT ").append(limit);
        Query query = Panache.getEntityManager().createNativeQuery(sql.toString(), entity);
        for (int i = 0; i < args.size(); i++) {
            query.setParameter(i + 1, args.get(i));
        }
        return query.getResultList();
    }
}
