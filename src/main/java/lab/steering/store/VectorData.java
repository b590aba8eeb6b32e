package lab.steering.store;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

/** A vector's data: the GGUF control vector file itself (table steering_vector_data). */
@Entity
@Table(name = "steering_vector_data")
public class VectorData extends PanacheEntityBase {

    @Id
    @Column(name = "vector_id")
    public Long vectorId;

    @Column(nullable = false)
    public byte[] data;
}
