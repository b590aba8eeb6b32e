"""Writes the reference GGUF control vector the tests import (src/test/resources/gguf/reference-controlvector.gguf).

Made with llama.cpp's own `gguf` Python package (its GGUFWriter), not with the app's writer, so that the app's
reader is checked against an independent implementation of the format. Development only; the build does not run it.

    python3 -m venv VENV && VENV/bin/pip install gguf numpy
    VENV/bin/python scripts/reference/gguf_control_vector_fixture.py src/test/resources/gguf/reference-controlvector.gguf

The fixture was made with gguf 0.19.0 and numpy 2.4.6 (Python 3.11). It is what repeng-style tools write:
general.architecture "controlvector", controlvector.model_hint "llama", controlvector.layer_count as a u32 (the app
writes an i32, as llama.cpp's cvector-generator does) and F32 tensors direction.1..direction.3 of width 64
(stories260K's d), added by llama.cpp after its 0-based layers 1..3, i.e. the app's layers 3..5.
Values: direction.N[i] = (((7 i + 3 N) mod 13) - 6) / 8, exact in float32; ControlVectorFileTest recomputes them.
"""
import sys

import gguf
import numpy as np

WIDTH = 64
INDICES = (1, 2, 3)


def direction(n):
    i = np.arange(WIDTH)
    return ((((7 * i + 3 * n) % 13) - 6) / 8).astype(np.float32)


def main(path):
    w = gguf.GGUFWriter(path, "controlvector")
    w.add_string("controlvector.model_hint", "llama")
    w.add_uint32("controlvector.layer_count", len(INDICES))
    for n in INDICES:
        w.add_tensor(f"direction.{n}", direction(n))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1])
