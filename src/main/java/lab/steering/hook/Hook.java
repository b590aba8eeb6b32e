package lab.steering.hook;

import ai.djl.ndarray.NDArray;

/**
 * Reads or changes the activation at a site. Returning the argument unchanged makes a read-only hook;
 * returning another array of the same shape replaces the activation for the rest of the forward pass.
 */
@FunctionalInterface
public interface Hook {

    /**
     * @param site       where the forward pass is
     * @param activation (batch, tokens, d) the activation at that site for the tokens of this call
     * @param ctx        which absolute positions these tokens occupy
     */
    NDArray apply(Site site, NDArray activation, HookContext ctx);
}
