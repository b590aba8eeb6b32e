package lab.steering.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lab.steering.store.Columns;
import org.junit.jupiter.api.Test;

/** What the database is given: NUL, which a model may generate but PostgreSQL's text and jsonb refuse, as U+FFFD. */
class TextsTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void textLosesOnlyItsNulCharacters() {
        assertEquals("a\uFFFDb\uFFFD", Columns.storable("a\0b\0"));
        String clean = "no NUL here \\u0000";
        assertSame(clean, Columns.storable(clean));
    }

    @Test
    void tagsAreKeptOnceInTheirOrder() {
        org.junit.jupiter.api.Assertions.assertArrayEquals(new String[] {"b", "a"},
                Columns.tags(List.of("b", "a", "b", "a")));
        assertEquals(0, Columns.tags(null).length);
    }

    /** Jackson's own reading is the reference: only the NUL characters change, every other string stays as it was. */
    @Test
    void jsonLosesOnlyItsNulCharactersWhateverBackslashesSurroundThem() throws Exception {
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("nul", "x\0y");
        value.put("escapedBackslashThenU", "\\u0000");          // a backslash, then the letters u0000
        value.put("twoBackslashesThenNul", "\\\\\0");
        value.put("backslashThenNul", "\\\0");
        value.put("list", List.of("\0", "plain", "\\\\u0000"));
        String json = JSON.writeValueAsString(value);
        Object read = JSON.readValue(Columns.storableJson(json), Object.class);

        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("nul", "x\uFFFDy");
        expected.put("escapedBackslashThenU", "\\u0000");
        expected.put("twoBackslashesThenNul", "\\\\\uFFFD");
        expected.put("backslashThenNul", "\\\uFFFD");
        expected.put("list", List.of("\uFFFD", "plain", "\\\\u0000"));
        assertEquals(expected, read);
        String clean = JSON.writeValueAsString(Map.of("a", "\\u0000"));
        assertEquals(clean, Columns.storableJson(clean));
    }
}
