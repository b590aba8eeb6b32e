#!/usr/bin/env python3
"""Reads a Steering Lab low-rank operator (GET /api/operators/{id}/export?format=lowrank) and applies it, numpy only.

    python3 scripts/lowrank_steer.py OPERATOR.safetensors INPUTS.safetensors OUT.safetensors --strength 1.5

INPUTS holds two float32 tensors of one text: `x` [T, d], the input embeddings (HF hidden_states[0]), and `h` [T, d],
the residual entering 0-based decoder layer `layer - 1` (HF hidden_states[layer - 1]; `layer` is in the operator's
metadata). OUT receives `h_steered` [T, d]:

    i = k mod tokens;  v_k = u[i] @ (s[i] * (v[i].T @ x_k));  a_k = sum_{j <= k} v_j
    h_k <- h_k + strength * a_k * ||h_k|| / (2 ||a_k||)

In a PyTorch forward hook on that layer's input the same step is
`h + lam * a * h.norm(dim=-1, keepdim=True) / (2 * a.norm(dim=-1, keepdim=True))`, with `a` the running sum over
positions (carry it between decoding steps when a KV cache is used). Positions count from 0 at the first token
(BOS included where the tokenizer adds one).
"""
import argparse
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    """The tensors (numpy arrays) and the string metadata of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = memoryview(raw)[8 + n:]
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"])
    return tensors, meta


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_operator(path):
    tensors, meta = read_safetensors(path)
    if meta.get("format") != "steering-lab-lowrank":
        raise ValueError(f"{path}: not a steering-lab-lowrank file (format {meta.get('format')!r})")
    return tensors["u"], tensors["s"], tensors["v"], json.loads(meta["steering_lab"])


def steer(h, x, u, s, v, strength):
    """h, x: [T, d] float32. Returns h steered at every position, computed in float32 as the app does."""
    tokens = u.shape[0]
    injected = np.empty_like(x, dtype=np.float32)
    for k in range(x.shape[0]):
        i = k % tokens
        injected[k] = u[i] @ (s[i] * (v[i].T @ x[k]))
    a = np.cumsum(injected, axis=0, dtype=np.float32)
    h_norm = np.linalg.norm(h, axis=-1, keepdims=True)
    a_norm = np.linalg.norm(a, axis=-1, keepdims=True)
    return (h + a * h_norm / a_norm * np.float32(strength / 2)).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("operator")
    p.add_argument("inputs")
    p.add_argument("out")
    p.add_argument("--strength", type=float, default=1.0)
    args = p.parse_args()
    u, s, v, meta = load_operator(args.operator)
    inputs, _ = read_safetensors(args.inputs)
    h = inputs["h"].astype(np.float32)
    x = inputs["x"].astype(np.float32)
    if x.shape[-1] != meta["dim"] or h.shape != x.shape:
        raise ValueError(f"inputs have shapes {x.shape} and {h.shape}, the operator's d is {meta['dim']}")
    write_safetensors(args.out, {"h_steered": steer(h, x, u, s, v, args.strength)})


if __name__ == "__main__":
    main()
