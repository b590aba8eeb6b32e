package lab.steering.web;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.module.SimpleModule;
import io.quarkus.jackson.ObjectMapperCustomizer;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.util.List;

/**
 * What the app's JSON reader takes beyond Jackson's defaults, so that a bad value is a 400 naming its field
 * ({@link ErrorMappers#badJson}) instead of a silent change: whole-number fields (Integer, Long) take 3 and 3.0 but
 * refuse 2.5 (Jackson would truncate it to 2) and values out of their range. The same mapper reads the app's own
 * stored JSON back, which holds whole numbers as integers. (Text is checked field by field, {@code Texts}: stored
 * analyses hold token texts with any character, NUL included.)
 */
@Singleton
public class RequestJson implements ObjectMapperCustomizer {

    /** A value refused for a reason of its own; the mapper names the field and says why. */
    public static final class Refused extends InvalidFormatException {
        private final String reason;

        Refused(JsonParser p, String reason, Object value, Class<?> type) {
            super(p, reason, value, type);
            this.reason = reason;
        }

        public String reason() {
            return reason;
        }
    }

    @Override
    public void customize(ObjectMapper mapper) {
        SimpleModule m = new SimpleModule("steering-lab-request-json");
        m.addDeserializer(Integer.class, new Whole<>(Integer.class, Integer.MIN_VALUE, Integer.MAX_VALUE));
        m.addDeserializer(Long.class, new Whole<>(Long.class, Long.MIN_VALUE, Long.MAX_VALUE));
        mapper.registerModule(m);
        // text fields take text only: a number or a boolean where text is expected ("prompt": 42) is refused, not
        // read as "42" (Jackson's default); arrays and objects are refused already
        for (com.fasterxml.jackson.databind.cfg.CoercionInputShape shape : List.of(
                com.fasterxml.jackson.databind.cfg.CoercionInputShape.Integer,
                com.fasterxml.jackson.databind.cfg.CoercionInputShape.Float,
                com.fasterxml.jackson.databind.cfg.CoercionInputShape.Boolean)) {
            mapper.coercionConfigFor(com.fasterxml.jackson.databind.type.LogicalType.Textual)
                    .setCoercion(shape, com.fasterxml.jackson.databind.cfg.CoercionAction.Fail);
        }
    }

    /** Integer or Long from a JSON integer, or from a number with no fractional part within the type's range. */
    static final class Whole<T extends Number> extends StdScalarDeserializer<T> {
        private final long min;
        private final long max;

        Whole(Class<T> type, long min, long max) {
            super(type);
            this.min = min;
            this.max = max;
        }

        @Override
        public T deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            JsonToken t = p.currentToken();
            if (t == JsonToken.VALUE_NUMBER_INT) {
                if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER || p.getLongValue() < min
                        || p.getLongValue() > max) {
                    throw new Refused(p, "is out of range (" + min + " to " + max + ")", p.getText(), handledType());
                }
                return box(p.getLongValue());
            }
            if (t == JsonToken.VALUE_NUMBER_FLOAT) {
                double v = p.getDoubleValue();
                if (v != Math.rint(v)) {
                    throw new Refused(p, "must be a whole number, got " + p.getText(), p.getText(), handledType());
                }
                if (v < min || v > max) {
                    throw new Refused(p, "is out of range (" + min + " to " + max + ")", p.getText(), handledType());
                }
                return box((long) v);
            }
            @SuppressWarnings("unchecked")
            T other = (T) ctxt.handleUnexpectedToken(handledType(), p);
            return other;
        }

        private T box(long v) {
            Number n;
            if (handledType() == Integer.class) {
                n = Integer.valueOf((int) v);
            } else {
                n = Long.valueOf(v);
            }
            @SuppressWarnings("unchecked")
            T boxed = (T) n;
            return boxed;
        }
    }
}
