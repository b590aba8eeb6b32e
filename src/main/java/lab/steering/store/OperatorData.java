package lab.steering.store;

import io.quarkus.hibernate.orm.panache.PanacheEntityBase;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

/** An operator's tensors: the safetensors file itself (table steering_operator_data). */
@Entity
@Table(name = "steering_operator_data")
public class OperatorData extends PanacheEntityBase {

    @Id
    @Column(name = "operator_id")
    public Long operatorId;

    @Column(nullable = false)
    public byte[] data;
}
