package lab.steering.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenDataTest {

    @Test
    void documentsAreBlocksBetweenEmptyLines() {
        assertEquals(List.of("a b\nc", "d", "e f"), TokenData.documents("a b\nc\n\nd\n\n\n  \ne f\n"));
        assertEquals(List.of("x", "y"), TokenData.documents("x\r\n\r\ny"));
    }

    @Test
    void idsRoundTripThroughTheCacheFile(@TempDir Path dir) throws Exception {
        int[] ids = {0, 1, 4095, 17, Integer.MAX_VALUE};
        TokenData.writeInts(dir.resolve("t.i32"), ids);
        assertEquals(20, Files.size(dir.resolve("t.i32")));
        assertArrayEquals(ids, TokenData.readInts(dir.resolve("t.i32")));
    }

    @Test
    void specialIdsComeFromTheTokenizerConfig(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"added_tokens": [{"id": 0, "content": "<s>"}, {"id": 1, "content": "</s>"}],
                 "model": {"type": "BPE", "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "ab": 4}}}""");
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"bos_token": "<s>", "eos_token": {"content": "</s>"}}""");
        assertArrayEquals(new int[] {0, 1, 5}, TokenData.specialIds(dir));
    }
}
