#!/usr/bin/env python3
"""Detached Jacobians and steered logits from an implementation independent of the app: Hugging Face transformers'
own modeling code in torch float64, with the nonlinear factors detached the way the paper's code does it, then
autograd through that linearised model (torch.autograd.functional.jacobian, vectorize=True, reverse mode).

The app computes J with a hand-written transpose of its own frozen network, and its tests compared that with autograd
through the same frozen network: one reading of the architecture on both sides. These fixtures come from HF's
modules instead, so a shared misreading, or a constant the app computes at lower precision, fails
DetachedJacobianFixtureTest and SteeringFixtureTest. The build and the tests never need Python: the outputs are
committed.

Re-run (from the repository root; the venv is a scratch folder, see hf_reference.py for how it was made):
    /tmp/venv/bin/python scripts/reference/detached_jacobian.py
    /tmp/venv/bin/python scripts/reference/detached_jacobian.py --stories ../shared/models/stories260K
Deterministic (fixed seeds, torch.set_num_threads(1)): a re-run rewrites the same bytes. Takes about 10 s.

What it writes:
  src/test/resources/checkpoints/dj-<family>/   a tiny random checkpoint per family (HF's <Family>ForCausalLM(config),
      seeded weights, save_pretrained in FLOAT32: a float32 file keeps every bit of w, so a constant derived from a
      weight in float32, such as Gemma's 1 + w, differs from the float64 one, where a bfloat16 file would hide it),
      plus the WordLevel tokenizer.json the app's loader needs.
  src/test/resources/reference/detached/<name>.safetensors   float64 tensors: x (T, d) the input embeddings
      (HF hidden_states[0]), y (d) the output (final-normed hidden state at the last position), jacobian (T, d, d)
      with jacobian[i][r][k] = dy_r / dx_{i,k} of the detached network, c (d) = y - sum_i J_i x_i.
  src/test/resources/reference/detached/steer-<name>.safetensors   float64 logits (steps, vocab) of the paper's
      re-encoding steering algorithm (METHOD.md section 5) at every greedy step; for the tiny model also operator
      (T_c, d, d), its J_C at the split layer.
  src/test/resources/reference/detached/hidden-tinystories-shared.safetensors   HF's hidden_states (L + 1, T, d) of
      stories260K for one prompt: where the app's residual hook sites must read (HooksTest).
  src/test/resources/reference/detached/index.json   prompts, ids, figures and versions for all of them.

Float64 all the way. transformers runs some ops in float32 even in a float64 model; each is replaced here by the
float64 form of the same math, and the figures of what each cast costs are written to index.json (hfFloat32Casts):
  - RMSNorm (every family): HF casts the input to float32 (LlamaRMSNorm and its copies; Gemma3RMSNorm also forms
    1 + w in float32). METHOD.md: "HF computes them in float32, even for a float64 model".
  - RoPE: HF computes inv_freq = 1 / theta^(2j/d) in float32, and positions * inv_freq, cos and sin in float32 under a
    disabled autocast, then casts cos/sin to the model dtype. The math is the real-valued rotation; the app builds
    the tables in double. Here: inv_freq (default, linear, llama3 scaling) and the tables in float64.
  - Attention softmax: every family's eager_attention_forward but GPT-2's calls softmax(..., dtype=torch.float32) and
    casts the weights back. Here softmax runs in the input's float64.
  - Gemma's embedding scale sqrt(d): a buffer made by torch.tensor(float) whose dtype follows the default dtype at
    construction. Here it is set to sqrt(d) in float64 (it does not enter J, which starts after the scaling, only the
    frozen factors through x).
Decided by the math (METHOD.md sections 1-2: "1e-12 or better in float64 if *every* op is float64"): the float64
forms are right and HF's float32 casts are approximations of them (together they move y by up to 2.2e-7). With them
replaced, the app agreed to 1e-15 with every family but one: its float64 twin of a float32-loaded Gemma formed 1 + w
in float32 (issue 18), fixed in Weights.Norm.

Detached factors (METHOD.md section 1), applied when DETACH is on:
  - RMSNorm: x * rsqrt(mean(x^2) + eps).detach() * w (Gemma: 1 + w); LayerNorm (GPT-2): the same on x - mean(x),
    plus the bias;
  - gated MLP: down(act(gate(x)).detach() * up(x)); Phi-3: down((up(x) * sigmoid(gate(x))).detach() * gate(x));
    GPT-2: fc2((gelu(z) / z).detach() * z) with z = fc1(x) (0.5 where z = 0);
  - attention: query and key detached after RoPE and QK-norm, inside each family's own eager_attention_forward, so
    the softmax weights (mask, window, scaling) are HF's and only V and o_proj stay linear.
"""
import argparse
import json
import math
import platform
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch
import transformers
from transformers import (AutoModelForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config, GPT2LMHeadModel,
                          LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Olmo2Config,
                          Olmo2ForCausalLM, Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config,
                          Qwen3ForCausalLM)

from hf_reference import word_level_tokenizer_json

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "src" / "test" / "resources" / "reference" / "detached"
CKPT_DIR = ROOT / "src" / "test" / "resources" / "checkpoints"
COMMAND = "/tmp/venv/bin/python scripts/reference/detached_jacobian.py"

SEED = 20251207
VOCAB = 32
PROMPT_LENGTH = 6  # longer than every sliding window below (3 and 4), so the windows shape the patterns
F64 = torch.float64

COMMON = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=0)
SMALL = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
             max_position_embeddings=64)

# name -> (model class, config, what the checkpoint exercises)
FAMILIES = {
    "llama": (LlamaForCausalLM, lambda: LlamaConfig(
        **dict(SMALL, max_position_embeddings=256), head_dim=8, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 200}, **COMMON),
              "llama3 RoPE scaling, MQA 2/1, untied"),
    "mistral": (MistralForCausalLM, lambda: MistralConfig(
        **SMALL, head_dim=8, rms_norm_eps=1e-5, sliding_window=3, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **COMMON),
                "sliding window 3 on every layer, untied"),
    "qwen2": (Qwen2ForCausalLM, lambda: Qwen2Config(
        **SMALL, rms_norm_eps=1e-6, use_sliding_window=False, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, **COMMON),
              "q/k/v biases (an affine map: c != 0), tied"),
    "qwen3": (Qwen3ForCausalLM, lambda: Qwen3Config(
        **SMALL, head_dim=12, rms_norm_eps=1e-6, use_sliding_window=False, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, **COMMON),
              "per-head QK-norm, head_dim 12 (q width 24 > d 16)"),
    "olmo2": (Olmo2ForCausalLM, lambda: Olmo2Config(
        **SMALL, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, **COMMON),
              "post-norms only, QK-norm over the whole projection"),
    "gemma3": (Gemma3ForCausalLM, lambda: Gemma3TextConfig(
        **dict(SMALL, hidden_size=24), head_dim=8, rms_norm_eps=1e-6, query_pre_attn_scalar=12, sliding_window=3,
        layer_types=["sliding_attention", "full_attention"],
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0}},
        hidden_activation="gelu_pytorch_tanh", attn_logit_softcapping=None, final_logit_softcapping=None,
        tie_word_embeddings=True, **COMMON),
               "d 24 (sqrt(d) not a float32 number), sandwich norms with 1 + w, sqrt(d) embedding scale, query_pre_attn_scalar 12 != head_dim 8, "
               "local (window 3, theta 1e4) and global (theta 1e6, linear x8) layers, GeGLU, per-head QK-norm"),
    "phi3": (Phi3ForCausalLM, lambda: Phi3Config(
        **SMALL, original_max_position_embeddings=64, rms_norm_eps=1e-5, sliding_window=4, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0}, **COMMON),
             "fused qkv_proj and gate_up_proj, the Phi-3 MLP factor, sliding window 4"),
    "gpt2": (GPT2LMHeadModel, lambda: GPT2Config(
        n_embd=16, n_layer=2, n_head=2, n_inner=None, n_positions=32, layer_norm_epsilon=1e-5,
        activation_function="gelu_new", tie_word_embeddings=True, vocab_size=VOCAB, bos_token_id=1, eos_token_id=2),
             "LayerNorm with bias, learned positions, Conv1D, biases everywhere (c != 0), gelu(z)/z factor"),
}

# Steering runs (METHOD.md section 5): the model, concept ids, split layer, strength, text ids, new tokens.
STORIES_STEER = [
    # stories260K ids: 403 = " Once"; concept and text are real tokens of its tok512 vocabulary
    dict(concept=[1, 403, 407, 261, 378, 432], layer=3, strength=2.0, text=[1, 383, 286, 261, 376], steps=6),
    dict(concept=[1, 403, 407, 261, 378, 432], layer=1, strength=4.0, text=[1, 383, 286, 261, 376], steps=6),
]
TINY_STEER = [
    # at layer 1 (a local layer, window 3) the last of 5 concept tokens would not see the first two: J_C[0] = J_C[1]
    # = 0, a_0 = 0 and the injection 0/0; a concept as long as the window avoids that
    dict(concept=[1, 7, 19], layer=1, strength=2.0, text=[1, 9, 30, 12], steps=6),
    dict(concept=[1, 7, 19, 4, 25], layer=2, strength=3.0, text=[1, 9, 30, 12], steps=6),
]

DETACH = False  # the patched modules detach their nonlinear factors while this is on
HF_AS_IS = False  # softmax keeps HF's float32 while this is on (to measure what HF's own casts change)


class detached:
    def __enter__(self):
        global DETACH
        DETACH = True

    def __exit__(self, *exc):
        global DETACH
        DETACH = False


def frozen(t):
    return t.detach() if DETACH else t


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "dtype": "float64",
        "attn_implementation": "eager",
        "device": "cpu",
        "command": COMMAND,
    }


# ---------------------------------------------------------------- float64 forms of HF's float32 ops, and the detach

def rms_forward(self, x):
    eps = getattr(self, "variance_epsilon", None)
    if eps is None:
        eps = self.eps
    scale = frozen(torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    w = 1.0 + self.weight if type(self).__name__.startswith("Gemma") else self.weight
    return x * scale * w


def layer_norm_forward(self, x):
    xc = x - x.mean(-1, keepdim=True)
    scale = frozen(torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + self.eps))
    return xc * scale * self.weight + self.bias


def gated_mlp_forward(self, x):
    return self.down_proj(frozen(self.act_fn(self.gate_proj(x))) * self.up_proj(x))


def phi3_mlp_forward(self, x):
    gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
    assert self.config.hidden_act == "silu"
    return self.down_proj(frozen(up * torch.sigmoid(gate)) * gate)


def gpt2_mlp_forward(self, x):
    z = self.c_fc(x)
    safe = torch.where(z == 0, torch.ones_like(z), z)
    ratio = torch.where(z == 0, torch.full_like(z, 0.5), self.act(safe) / safe)
    return self.dropout(self.c_proj(frozen(ratio) * z))


def inverse_frequencies(params, head_dim):
    """inv_freq in float64 from the rope parameters (the math of HF's default, linear and llama3 types)."""
    theta = params["rope_theta"]
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=F64) / head_dim)
    kind = params.get("rope_type", "default")
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / params["factor"]
    if kind == "llama3":
        factor, low, high = params["factor"], params["low_freq_factor"], params["high_freq_factor"]
        orig = params["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        smooth = (orig / wavelen - low) / (high - low)
        out = torch.where(wavelen > orig / low, inv / factor, inv)
        medium = (wavelen <= orig / low) & (wavelen >= orig / high)
        return torch.where(medium, (1 - smooth) * inv / factor + smooth * inv, out)
    raise ValueError("rope type " + kind)


def rope_forward(self, x, position_ids, layer_type=None):
    inv = self.inv64[layer_type]
    freqs = position_ids.to(F64)[..., None] * inv  # (batch, T, head_dim / 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def patch_attention_modules():
    """Each family's module-level eager_attention_forward, wrapped so that Q and K are detached when DETACH is on; and
    softmax in float64 where those functions ask for float32 (softmax(..., dtype=torch.float32))."""
    softmax = torch.nn.functional.softmax
    if not getattr(softmax, "float64", False):
        def float64_softmax(x, *args, dtype=None, **kwargs):
            if dtype == torch.float32 and x.dtype == F64 and not HF_AS_IS:
                dtype = F64
            return softmax(x, *args, dtype=dtype, **kwargs)

        float64_softmax.float64 = True
        torch.nn.functional.softmax = float64_softmax
    for name in ["llama", "mistral", "qwen2", "qwen3", "olmo2", "gemma3", "phi3", "gpt2"]:
        mod = __import__(f"transformers.models.{name}.modeling_{name}", fromlist=["eager_attention_forward"])
        original = mod.eager_attention_forward
        if getattr(original, "detaching", False):
            continue

        def wrapper(module, query, key, value, attention_mask, *args, _original=original, **kwargs):
            return _original(module, frozen(query), frozen(key), value, attention_mask, *args, **kwargs)

        wrapper.detaching = True
        mod.eager_attention_forward = wrapper


def make_float64(model):
    """Replaces HF's float32 ops by their float64 forms and installs the detach points (see the module doc)."""
    cfg = model.config
    for module in model.modules():
        kind = type(module).__name__
        if kind.endswith("RMSNorm"):
            module.forward = types.MethodType(rms_forward, module)
        elif isinstance(module, torch.nn.LayerNorm):
            module.forward = types.MethodType(layer_norm_forward, module)
        elif kind == "Phi3MLP":
            module.forward = types.MethodType(phi3_mlp_forward, module)
        elif kind == "GPT2MLP":
            module.forward = types.MethodType(gpt2_mlp_forward, module)
        elif kind.endswith("MLP"):
            assert hasattr(module, "gate_proj") and hasattr(module, "up_proj"), kind
            module.forward = types.MethodType(gated_mlp_forward, module)
        elif kind.endswith("RotaryEmbedding"):
            head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
            rope = cfg.rope_parameters
            if "full_attention" in rope:
                module.inv64 = {t: inverse_frequencies(p, head_dim) for t, p in rope.items()}
            else:
                module.inv64 = {None: inverse_frequencies(rope, head_dim)}
            for layer_type, inv in module.inv64.items():
                name = f"{layer_type}_inv_freq" if layer_type else "inv_freq"
                hf = getattr(module, name)
                assert torch.allclose(hf.to(F64), inv, rtol=1e-6, atol=0), (name, hf, inv)  # same math
                assert getattr(module, f"{layer_type}_attention_scaling" if layer_type else "attention_scaling") == 1.0
            module.forward = types.MethodType(rope_forward, module)
        elif kind == "Gemma3TextScaledWordEmbedding":
            module.embed_scale = torch.tensor(math.sqrt(cfg.hidden_size), dtype=F64)
    return model


def load(folder, float64_ops=True):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=F64, attn_implementation="eager")
    model.eval()
    return make_float64(model) if float64_ops else model


# ---------------------------------------------------------------- the detached Jacobian

def base(model):
    return model.transformer if model.config.model_type == "gpt2" else model.model


@torch.no_grad()
def embeddings(model, ids):
    """HF hidden_states[0] (1, T, d): after Gemma's scaling and GPT-2's learned positions."""
    out = base(model)(torch.tensor([ids]), output_hidden_states=True, use_cache=False)
    return out.hidden_states[0]


def output_fn(model, layer=None):
    """X (1, T, d) -> the final-normed hidden state at the last position (d): of the whole model, or of the residual
    after `layer` decoder layers with the final norm applied (the steering operator's target)."""
    b = base(model)
    gpt2 = model.config.model_type == "gpt2"

    def f(x):
        t = x.shape[1]
        # GPT-2 adds its learned positions to inputs_embeds: feed x minus them, so that hidden_states[0] = x
        inputs = x - b.wpe(torch.arange(t))[None] if gpt2 else x
        if layer is None or layer == model.config.num_hidden_layers:  # HF's hidden_states[L] is already normed
            return b(inputs_embeds=inputs, use_cache=False).last_hidden_state[0, -1]
        hs = b(inputs_embeds=inputs, use_cache=False, output_hidden_states=True).hidden_states
        final = b.ln_f if gpt2 else b.norm
        return final(hs[layer][:, -1:])[0, 0]
    return f


def jacobian(model, x, layer=None, detach=True):
    """(T, d, d): J[i][r][k] = dy_r / dx_{i,k}, by reverse-mode autograd (as the authors' code)."""
    f = output_fn(model, layer)
    if detach:
        with detached():
            jac = torch.autograd.functional.jacobian(f, x, vectorize=True)  # (d, 1, T, d)
    else:
        jac = torch.autograd.functional.jacobian(f, x, vectorize=True)
    return jac[:, 0].permute(1, 0, 2).contiguous()


def rel(a, b):
    return float((a - b).norm() / b.norm())


def detached_case(name, folder, ids, has_bias, stats):
    """The fixture of one checkpoint and prompt: x, y, J, c; figures in stats."""
    model = load(folder)
    x = embeddings(model, ids)
    with torch.no_grad():
        y = output_fn(model)(x)
    jac = jacobian(model, x)
    linear = torch.einsum("trk,tk->r", jac, x[0])
    c = y - linear
    err = rel(linear, y)
    # the ordinary Jacobian (nothing detached) gives a large error: Figure 1B's contrast
    ordinary = rel(torch.einsum("trk,tk->r", jacobian(model, x, detach=False), x[0]), y)
    if has_bias:
        assert float(c.norm()) > 1e-3, "a family with biases has a constant term"
    else:
        assert err < 1e-12, f"{name}: detached reconstruction error {err:.3e} is not float64-exact"
    assert ordinary > 1e-3, f"{name}: ordinary reconstruction error {ordinary:.3e}"

    # what HF's own float32 casts change (RMSNorm, RoPE, embed scale), on the same weights and prompt
    global HF_AS_IS
    plain = load(folder, float64_ops=False)
    HF_AS_IS = True
    try:
        x_plain = embeddings(plain, ids)
        with torch.no_grad():
            y_plain = output_fn(plain)(x_plain)
    finally:
        HF_AS_IS = False
    stats.update({
        "reconstructionRelErr": err,
        "ordinaryReconstructionRelErr": ordinary,
        "constantNorm": float(c.norm()),
        "hfFloat32Casts": {"inputRelDiff": rel(x_plain, x), "outputRelDiff": rel(y_plain, y)},
    })
    if name == "gemma3":
        scale = plain.model.embed_tokens.embed_scale
        stats["hfFloat32Casts"]["embedScale"] = {"dtype": str(scale.dtype), "value": float(scale),
                                                 "exact": math.sqrt(plain.config.hidden_size)}
    tensors = {"x": x[0].contiguous(), "y": y.contiguous(), "jacobian": jac, "c": c.contiguous()}
    return tensors


# ---------------------------------------------------------------- steering by re-encoding (METHOD.md section 5)

def steer(model, concept, layer, strength, text, steps):
    """The paper's algorithm: J_C of the concept at `layer`; then at every greedy step re-encode the whole text,
    add lambda * a_k * ||h_k|| / (2 ||a_k||) to the residual entering layer l_s - 1 (HF hidden_states[l_s - 1]) at every
    position k, with a_k = sum_{j <= k} J_C[j mod T_c] x_j, and take the argmax of the last position's logits."""
    op = jacobian(model, embeddings(model, concept), layer)  # (T_c, d, d)
    blocks = base(model).h if model.config.model_type == "gpt2" else base(model).layers
    state = {}

    def capture(module, args, output):  # hidden_states[0] (x_k): the input of the first decoder layer
        state["x"] = args[0].detach().clone()

    def inject(module, args, kwargs):
        h = args[0] if args else kwargs["hidden_states"]
        x = state["x"][0]
        t = x.shape[0]
        v = torch.stack([op[k % op.shape[0]] @ x[k] for k in range(t)])   # (t, d)
        a = torch.cumsum(v, dim=0)
        hn = h[0].norm(dim=-1, keepdim=True)
        an = a.norm(dim=-1, keepdim=True)
        steered = h + (strength * a * hn / (2 * an))[None]
        if args:
            return (steered,) + tuple(args[1:]), kwargs
        kwargs["hidden_states"] = steered
        return args, kwargs

    handles = [blocks[0].register_forward_pre_hook(lambda m, a, k: capture(m, a if a else (k["hidden_states"],), None),
                                                   with_kwargs=True)]
    # registered after the capture on layer 0, so at l_s = 1 the capture sees the unsteered embeddings
    handles.append(blocks[layer - 1].register_forward_pre_hook(inject, with_kwargs=True))
    ids = list(text)
    logits = []
    try:
        with torch.no_grad():
            for _ in range(steps):
                out = model(torch.tensor([ids]), use_cache=False)  # re-encodes the whole text, no KV cache
                last = out.logits[0, -1]
                logits.append(last)
                ids.append(int(last.argmax()))
    finally:
        for h in handles:
            h.remove()
    stacked = torch.stack(logits)
    top2 = stacked.topk(2, dim=-1).values
    return stacked, ids[len(text):], [float(m) for m in (top2[:, 0] - top2[:, 1])], op


def steering_case(model, run, label, index):
    logits, new_ids, margins, op = steer(model, run["concept"], run["layer"], run["strength"], run["text"],
                                         run["steps"])
    with torch.no_grad():
        plain_ids = list(run["text"])
        for _ in range(run["steps"]):
            plain_ids.append(int(model(torch.tensor([plain_ids]), use_cache=False).logits[0, -1].argmax()))
    entry = dict(run)
    entry.update({"file": f"steer-{label}-{index}.safetensors", "greedy": new_ids, "greedyMargins": margins,
                  "unsteeredGreedy": plain_ids[len(run["text"]):], "maxAbsLogit": float(logits.abs().max())})
    tensors = {"logits": logits.contiguous()}
    if op.shape[1] <= 32:  # the tiny model's operator (a few KB) also checks the cumulative layer target
        tensors["operator"] = op.contiguous()
    save(f"steer-{label}-{index}.safetensors", tensors)
    return entry


# ---------------------------------------------------------------- checkpoints and files

def init_weights(model, gemma, g):
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            r = torch.randn(p.shape, generator=g)
            is_norm = "norm" in name or ".ln_" in name or name.startswith("transformer.ln_f")
            if is_norm and name.endswith(".weight"):
                p.copy_(0.1 * r if gemma else 1.0 + 0.1 * r)
            elif name.endswith(".bias"):
                p.copy_(0.1 * r)
            else:
                p.copy_(0.3 * r)


def write_checkpoint(name):
    cls, make_config, _ = FAMILIES[name]
    torch.manual_seed(SEED)
    model = cls(make_config())
    init_weights(model, name == "gemma3", torch.Generator().manual_seed(SEED + len(name)))
    folder = CKPT_DIR / ("dj-" + name)
    if folder.exists():
        shutil.rmtree(folder)
    model.to(torch.float32).save_pretrained(folder)
    (folder / "tokenizer.json").write_text(word_level_tokenizer_json(VOCAB))
    reloaded = load(folder, float64_ops=False)
    saved = dict(model.named_parameters())
    for n, p in reloaded.named_parameters():
        assert torch.equal(saved[n].to(F64), p), n
    return folder


def save(file, tensors):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / file
    safetensors.torch.save_file({k: v.to(F64).contiguous() for k, v in tensors.items()}, str(path))
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", default=str(ROOT.parent / "shared" / "models" / "stories260K"))
    args = ap.parse_args(argv)
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(1)
    patch_attention_modules()
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    index = {"versions": versions(), "jacobians": [], "steering": []}

    stories = Path(args.stories)
    ids = [1, 403, 407, 261]
    stats = {}
    save("tinystories-shared.safetensors", detached_case("stories260K", stories, ids, False, stats))
    index["jacobians"].append(dict(name="stories260K", file="tinystories-shared.safetensors",
                                   modelPath="../shared/models/stories260K", ids=ids, **stats))
    # HF hidden_states of stories260K (float64 ops): what the app's residual hook sites must see (HooksTest)
    hidden_ids = [1, 403, 20]
    with torch.no_grad():
        hs = base(load(stories))(torch.tensor([hidden_ids]), output_hidden_states=True, use_cache=False).hidden_states
    save("hidden-tinystories-shared.safetensors", {"hidden_states": torch.stack([h[0] for h in hs])})
    index["hiddenStates"] = dict(name="stories260K", file="hidden-tinystories-shared.safetensors",
                                 modelPath="../shared/models/stories260K", ids=hidden_ids,
                                 meaning="hidden_states[l] (l = 0..L) of HF's forward, [L + 1, T, d]: l < L the "
                                         "residual after l decoder layers, l = L after the final norm")
    for name, (_, _, features) in FAMILIES.items():
        folder = write_checkpoint(name)
        g = torch.Generator().manual_seed(SEED + 7)
        ids = [1] + torch.randint(3, VOCAB, (PROMPT_LENGTH - 1,), generator=g).tolist()
        stats = {}
        has_bias = name in ("qwen2", "gpt2")
        save(f"{name}.safetensors", detached_case(name, folder, ids, has_bias, stats))
        index["jacobians"].append(dict(name=name, file=f"{name}.safetensors",
                                       modelPath=str(folder.relative_to(ROOT)), features=features, ids=ids, **stats))

    model = load(stories)
    for i, run in enumerate(STORIES_STEER):
        index["steering"].append(dict(modelPath="../shared/models/stories260K",
                                      **steering_case(model, run, "tinystories-shared", i)))
    model = load(CKPT_DIR / "dj-gemma3")
    for i, run in enumerate(TINY_STEER):
        index["steering"].append(dict(modelPath="src/test/resources/checkpoints/dj-gemma3",
                                      **steering_case(model, run, "gemma3", i)))
    path = OUT_DIR / "index.json"
    path.write_text(json.dumps(index, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
    for j in index["jacobians"]:
        print(f"{j['name']:12s} relErr {j['reconstructionRelErr']:.2e} ordinary {j['ordinaryReconstructionRelErr']:.2e} "
              f"||c|| {j['constantNorm']:.2e} HF float32 casts: y {j['hfFloat32Casts']['outputRelDiff']:.2e}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
