#!/usr/bin/env python3
"""Reference numbers from Hugging Face transformers for a tiny random checkpoint of every non-Llama family.

The project's DJL model and its plain-Java ReferenceDecoder were written by the same person; these fixtures come
from transformers' own modeling code, so a shared misreading of a family shows up as a test failure
(HfFamiliesTest). The build and the tests never need Python: the folders and fixtures are committed.

Re-run (from the repository root; the venv is a scratch folder, see hf_reference.py for how it was made):
    /work/venv-ref/bin/python scripts/reference/hf_families.py            # all families
    /work/venv-ref/bin/python scripts/reference/hf_families.py gemma3     # only some (names as in FAMILIES)
Deterministic (fixed seeds, torch.set_num_threads(1)): a re-run rewrites the same bytes.

For each family it
  1. builds the model from a config (transformers' own <Family>ForCausalLM(config)), fills every parameter from a
     seeded generator (projections and embeddings ~ N(0, 0.2), biases ~ N(0, 0.1), norm weights 1 + N(0, 0.1);
     Gemma stores w with the multiplier 1 + w, so its norm weights are N(0, 0.1)),
  2. save_pretrained -> src/test/resources/checkpoints/hf-<family>/ (config.json, generation_config.json,
     model.safetensors, in the dtype of the table below; plus a WordLevel tokenizer.json t0..t127 of
     hf_reference.py's form, which the app's loader requires, though the tests pass ids), and re-loads that folder with HF's loader in float32
     (BF16 upcasts exactly), asserting the parameters are those saved,
  3. records, for 2 fixed id prompts (lengths 24 and 40, both longer than every sliding window), float32 logits at
     a few positions (full vocabulary) and 24 greedy ids from model.generate(do_sample=False, eos_token_id=None),
     cross-checked against an argmax loop over full forward passes, with the top-1/top-2 margins of each step,
  4. records what transformers makes of that config.json with the DEFAULTED fields deleted (their defaults),
  5. writes src/test/resources/reference/hf-<family>.json with the versions used.

All computation: torch float32, attn_implementation="eager", CPU, eval(), no_grad(), use_cache=False for logits.
"""
import json
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config, GPT2LMHeadModel, MistralConfig,
                          MistralForCausalLM, Olmo2Config, Olmo2ForCausalLM, Phi3Config, Phi3ForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

from hf_reference import f32_list, greedy, word_level_tokenizer_json, write_json

ROOT = Path(__file__).resolve().parents[2]
REF_DIR = ROOT / "src" / "test" / "resources" / "reference"
CKPT_DIR = ROOT / "src" / "test" / "resources" / "checkpoints"
COMMAND = "/work/venv-ref/bin/python scripts/reference/hf_families.py"

SEED = 20251126
VOCAB = 128
PROMPT_LENGTHS = [24, 40]
NEW_TOKENS = 24
# positions whose logits are recorded (clipped to the prompt): the first, around the windows (6, 8, 10), the last
POSITIONS = [0, 5, 6, 7, 8, 9, 10, 11, 16, -1]

COMMON = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=0)

# name -> (model class, config, dtype on disk, what the checkpoint exercises)
FAMILIES = {
    "mistral": (MistralForCausalLM, lambda: MistralConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=12, max_position_embeddings=128, rms_norm_eps=1e-5, rope_parameters={"rope_type": "default",
        "rope_theta": 10000.0}, sliding_window=8, tie_word_embeddings=False, **COMMON),
        torch.bfloat16, "sliding window 8 on every layer, GQA 4/2, head_dim 12 != hidden/heads, untied"),
    "qwen2": (Qwen2ForCausalLM, lambda: Qwen2Config(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, rms_norm_eps=1e-6, rope_parameters={"rope_type": "default",
        "rope_theta": 1000000.0}, use_sliding_window=False, tie_word_embeddings=True, **COMMON),
        torch.float32, "q/k/v biases, tied embeddings, theta 1e6"),
    "qwen3": (Qwen3ForCausalLM, lambda: Qwen3Config(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, max_position_embeddings=128, rms_norm_eps=1e-6, rope_parameters={"rope_type": "default",
        "rope_theta": 1000000.0}, use_sliding_window=False, tie_word_embeddings=False, **COMMON),
        torch.bfloat16, "per-head q_norm/k_norm before RoPE, head_dim 16 (q width 64 > hidden 32), untied"),
    "olmo2": (Olmo2ForCausalLM, lambda: Olmo2Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, rms_norm_eps=1e-6, rope_parameters={"rope_type": "default",
        "rope_theta": 500000.0}, tie_word_embeddings=False, **COMMON),
        torch.bfloat16, "post-norms only (no input norms), q_norm/k_norm over the whole projection, GQA 4/2"),
    "gemma3": (Gemma3ForCausalLM, lambda: Gemma3TextConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1,
        head_dim=16, max_position_embeddings=128, rms_norm_eps=1e-6, query_pre_attn_scalar=24,
        sliding_window=6, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0}},
        hidden_activation="gelu_pytorch_tanh", attn_logit_softcapping=None, final_logit_softcapping=None,
        tie_word_embeddings=True, **COMMON),
        torch.bfloat16, "local/global layers (window 6; local theta 1e4 unscaled, global 1e6 with linear x8), "
                        "query_pre_attn_scalar 24 != head_dim 16, sandwich norms with 1 + w, sqrt(d) embedding "
                        "scale, per-head QK-norm, GELU-tanh, MQA, tied"),
    "phi3": (Phi3ForCausalLM, lambda: Phi3Config(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, original_max_position_embeddings=128, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0},
        sliding_window=10, tie_word_embeddings=False, **COMMON),
        torch.bfloat16, "fused qkv_proj (GQA 4/2) and gate_up_proj, sliding window 10, untied"),
    "gpt2": (GPT2LMHeadModel, lambda: GPT2Config(
        n_embd=32, n_layer=2, n_head=4, n_inner=None, n_positions=80, layer_norm_epsilon=1e-5,
        activation_function="gelu_new", tie_word_embeddings=True, vocab_size=VOCAB, bos_token_id=1, eos_token_id=2),
        torch.bfloat16, "Conv1D (in, out) weights, fused c_attn, biases everywhere, LayerNorm, learned positions "
                       "(80), gelu_new, n_inner null (4 d), tied"),
}


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "dtype": "float32",
        "attn_implementation": "eager",
        "device": "cpu",
        "command": COMMAND,
    }


def init_weights(model, gemma):
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            r = torch.randn(p.shape, generator=g)
            is_norm = "norm" in name or ".ln_" in name or name.startswith("transformer.ln_f")
            if is_norm and name.endswith(".weight"):
                p.copy_(0.1 * r if gemma else 1.0 + 0.1 * r)
            elif name.endswith(".bias"):
                p.copy_(0.1 * r)
            else:
                p.copy_(0.2 * r)


@torch.no_grad()
def sensitivity(name, model, prompt):
    """Max |logit change| over all positions of a prompt under plausible misreadings of the family (so the fixture
    is known to catch them; the tests' tolerance is ~5e-4)."""
    ids = torch.tensor([prompt])
    ref = model(ids, use_cache=False).logits
    cfg = model.config
    out = {}

    def measure(key, apply, undo):
        apply()
        out[key] = float((model(ids, use_cache=False).logits - ref).abs().max())
        undo()

    if cfg.model_type != "gpt2" and getattr(cfg, "sliding_window", None) and cfg.model_type not in ("qwen2", "qwen3"):
        w = cfg.sliding_window
        measure("windowPlusOne", lambda: setattr(cfg, "sliding_window", w + 1), lambda: setattr(cfg, "sliding_window", w))
        measure("windowMinusOne", lambda: setattr(cfg, "sliding_window", w - 1), lambda: setattr(cfg, "sliding_window", w))
    attns = [layer.self_attn for layer in model.model.layers] if hasattr(model, "model") else []
    if name == "gemma3":
        s = attns[0].scaling
        hd = cfg.head_dim ** -0.5
        measure("scaleByHeadDim", lambda: [setattr(a, "scaling", hd) for a in attns],
                lambda: [setattr(a, "scaling", s) for a in attns])
        rot = model.model.rotary_emb
        full, local = rot.full_attention_inv_freq.clone(), rot.sliding_attention_inv_freq.clone()
        measure("globalRopeUnscaled", lambda: rot.full_attention_inv_freq.mul_(8.0),
                lambda: rot.full_attention_inv_freq.copy_(full))
        measure("localLayersWithGlobalRope", lambda: rot.sliding_attention_inv_freq.copy_(full),
                lambda: rot.sliding_attention_inv_freq.copy_(local))
        types = list(cfg.layer_types)
        measure("allLayersSliding", lambda: setattr(cfg, "layer_types", ["sliding_attention"] * len(types)),
                lambda: setattr(cfg, "layer_types", types))
    if name in ("qwen3", "olmo2", "gemma3"):
        norms = [(a.q_norm, a.k_norm) for a in attns]

        def drop():
            for a in attns:
                a.q_norm, a.k_norm = torch.nn.Identity(), torch.nn.Identity()

        def back():
            for a, (qn, kn) in zip(attns, norms):
                a.q_norm, a.k_norm = qn, kn

        measure("noQkNorm", drop, back)
    if name == "qwen2":
        saved = [(a.q_proj.bias.clone(), a.k_proj.bias.clone(), a.v_proj.bias.clone()) for a in attns]

        def zero():
            for a in attns:
                a.q_proj.bias.zero_(); a.k_proj.bias.zero_(); a.v_proj.bias.zero_()

        def restore():
            for a, (bq, bk, bv) in zip(attns, saved):
                a.q_proj.bias.copy_(bq); a.k_proj.bias.copy_(bk); a.v_proj.bias.copy_(bv)

        measure("noQkvBias", zero, restore)
    if name == "phi3":
        saved = [layer.mlp.gate_up_proj.weight.clone() for layer in model.model.layers]

        def swap():
            for layer in model.model.layers:
                gw = layer.mlp.gate_up_proj.weight
                gw.copy_(torch.cat(gw.chunk(2, dim=0)[::-1]))

        measure("gateAndUpSwapped", swap,
                lambda: [l.mlp.gate_up_proj.weight.copy_(w) for l, w in zip(model.model.layers, saved)])
    if name == "gpt2":
        acts = [block.mlp.act for block in model.transformer.h]
        measure("exactGelu", lambda: [setattr(b.mlp, "act", torch.nn.GELU()) for b in model.transformer.h],
                lambda: [setattr(b.mlp, "act", a) for b, a in zip(model.transformer.h, acts)])
    assert torch.equal(model(ids, use_cache=False).logits, ref)
    return out


# config.json fields deleted to learn transformers' defaults for them (HfFamiliesTest deletes the same ones and
# compares what ModelConfig reads): a config on the hub may lack any of them.
DEFAULTED = ["rms_norm_eps", "sliding_window", "layer_types", "rope_parameters", "rope_theta", "query_pre_attn_scalar",
             "tie_word_embeddings", "layer_norm_epsilon", "n_positions"]


def config_defaults(folder, cls):
    """What transformers makes of the folder's config.json with the DEFAULTED fields removed."""
    raw = json.loads((folder / "config.json").read_text())
    removed = sorted(k for k in DEFAULTED if k in raw)
    for k in removed:
        del raw[k]
    cfg = cls.config_class.from_dict(raw)
    if cfg.model_type == "gpt2":
        return {"removed": removed, "eps": cfg.layer_norm_epsilon, "maxPositions": cfg.n_positions,
                "tied": cfg.tie_word_embeddings, "attentionScale": (cfg.n_embd // cfg.n_head) ** -0.5}
    rope = cfg.rope_parameters
    full, local = (rope["full_attention"], rope["sliding_attention"]) if "full_attention" in rope else (rope, rope)
    window = getattr(cfg, "sliding_window", None) or 0
    types = getattr(cfg, "layer_types", None)
    sliding = [t == "sliding_attention" for t in types] if types else [window > 0] * cfg.num_hidden_layers
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    scale = cfg.query_pre_attn_scalar ** -0.5 if cfg.model_type == "gemma3_text" else head_dim ** -0.5
    model = cls(cfg)  # the modules agree with the config-derived values
    attn = model.model.layers[0].self_attn
    assert abs(attn.scaling - scale) < 1e-15, (attn.scaling, scale)
    return {"removed": removed, "eps": cfg.rms_norm_eps, "slidingWindow": window if any(sliding) else 0,
            "slidingLayers": sliding, "ropeTheta": full["rope_theta"], "localRopeTheta": local["rope_theta"],
            "attentionScale": scale, "tied": cfg.tie_word_embeddings}


@torch.no_grad()
def family(name):
    cls, make_config, dtype, features = FAMILIES[name]
    torch.manual_seed(SEED)
    model = cls(make_config())
    init_weights(model, gemma=name == "gemma3")
    model.to(dtype)
    folder = CKPT_DIR / ("hf-" + name)
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder)
    # the app's loader needs a tokenizer; the tests pass ids directly
    (folder / "tokenizer.json").write_text(word_level_tokenizer_json(VOCAB))
    for f in sorted(folder.iterdir()):
        print(f"wrote {f.relative_to(ROOT)} ({f.stat().st_size} bytes)")

    reloaded = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    reloaded.eval()
    saved = dict(model.named_parameters())
    for n, p in reloaded.named_parameters():
        assert torch.equal(saved[n].float(), p), n

    g = torch.Generator().manual_seed(SEED + 1)
    cases = []
    for length in PROMPT_LENGTHS:
        prompt = [1] + torch.randint(3, VOCAB, (length - 1,), generator=g).tolist()
        logits = reloaded(torch.tensor([prompt]), use_cache=False).logits[0]
        positions = sorted({p if p >= 0 else length + p for p in POSITIONS if p < length})
        gen, margins = greedy(reloaded, prompt, NEW_TOKENS)
        cases.append({
            "prompt": prompt,
            "positions": positions,
            "logits": [f32_list(logits[p]) for p in positions],
            "maxAbsLogit": float(logits.abs().max()),
            "greedy": gen,
            "greedyMargins": margins,
        })
    sens = sensitivity(name, reloaded, cases[-1]["prompt"])
    write_json(REF_DIR / f"hf-{name}.json", {
        "model": "hf-" + name,
        "modelType": reloaded.config.model_type,
        "modelPath": f"src/test/resources/checkpoints/hf-{name}",
        "features": features,
        "storedDtype": str(dtype).replace("torch.", ""),
        "seed": SEED,
        "vocabSize": VOCAB,
        "newTokens": NEW_TOKENS,
        "versions": versions(),
        "cases": cases,
        "sensitivity": sens,
        "configDefaults": config_defaults(folder, cls),
    })


def main(argv):
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(1)  # deterministic reductions
    for name in argv or list(FAMILIES):
        family(name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
