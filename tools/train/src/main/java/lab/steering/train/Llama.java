package lab.steering.train;

import ai.djl.ndarray.NDArray;
import java.util.Collections;
import java.util.List;
import lab.steering.model.Family;
import lab.steering.model.ModelConfig;
import lab.steering.model.Weights;

/**
 * Llama models built in memory rather than read from a checkpoint (the trainer's model, the benchmarks' random
 * models at a real model's shape): the core's records filled the Llama way. No biases, RMSNorm without offset, no
 * sliding window, the usual attention scale.
 */
public final class Llama {

    private Llama() {
    }

    /** A Llama config.json: {@code torchDtype} is the dtype the weights are published in. */
    public static ModelConfig config(int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim,
                                     int vocab, int maxPositions, double rmsNormEps, double ropeTheta,
                                     ModelConfig.RopeScaling ropeScaling, boolean tied, int bos, List<Integer> eos,
                                     String torchDtype) {
        return new ModelConfig("llama", hidden, intermediate, layers, heads, kvHeads, headDim, vocab, maxPositions,
                rmsNormEps, ropeTheta, ropeScaling, tied, bos, eos, torchDtype, Family.of("llama"), 0,
                Collections.nCopies(layers, false), ropeTheta, 1.0 / Math.sqrt(headDim));
    }

    /** One decoder layer: the two RMSNorm weights (d), the attention projections and the gated MLP. */
    public static Weights.Layer layer(NDArray attnNorm, NDArray wq, NDArray wk, NDArray wv, NDArray wo,
                                      NDArray mlpNorm, NDArray gate, NDArray up, NDArray down) {
        return new Weights.Layer(norm(attnNorm), wq, null, wk, null, wv, null, wo, null, null, null, null,
                norm(mlpNorm), gate, up, null, down, null, null);
    }

    /** The whole model; {@code lmHead} is {@code embed} itself when the embeddings are tied. */
    public static Weights weights(NDArray embed, List<Weights.Layer> layers, NDArray finalNorm, NDArray lmHead) {
        return new Weights(embed, null, layers, norm(finalNorm), lmHead);
    }

    private static Weights.Norm norm(NDArray weight) {
        return new Weights.Norm(weight, null);
    }
}
