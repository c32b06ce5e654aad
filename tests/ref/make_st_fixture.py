#!/usr/bin/python3
"""Writes tests/data/torch_dtypes.safetensors, the fixture tests/test-safetensors.c reads.

The file is serialised by hand exactly as the safetensors format specifies (8-byte
little-endian header length, JSON header padded with spaces to a multiple of 8, data), since
Debian has no `safetensors` Python package. Every value is converted by PyTorch, so the test
checks scvrl's f16/bf16 conversions and integer/double reads against torch bit for bit:

  src            F32   tricky values (ties, subnormals, overflow, infinities) + random ones
  src_f16        F16   torch: src.half()             src_f16_f32   F32  src.half().float()
  src_bf16       BF16  torch: src.bfloat16()         src_bf16_f32  F32  src.bfloat16().float()
  src_f64        F64   src.double()
  ints_i32       I32   edge integers                 ints_i32_f32  F32  torch .float()
  ints_i64       I64   edge integers                 ints_i64_f32  F32  torch .float()
  scalar         F32   shape []      empty  F32 shape [0, 3]      mat  BF16 shape [2, 3]
  "ünï✓ 😀"      F32   a non-ASCII name (json.dumps writes it as \\u escapes, surrogate pair)

__metadata__ holds FNV-1a 64 hashes of torch's f16->f32 and bf16->f32 of all 65536 bit
patterns (as little-endian u32 bytes) and a string with quotes, a backslash and a newline.
NaN is left out of `src`: torch's vectorised f32->bf16 turns every NaN into 0xFFFF, its scalar
path into 0x7FC0 (scvrl writes 0x7FC0 with the sign).

Run: /usr/bin/python3 tests/ref/make_st_fixture.py   (needs python3-torch, python3-numpy)
"""
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "torch_dtypes.safetensors")


def tricky():
    v = [0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 65504.0, 65505.0, 65519.99, 65520.0, 1e5, -1e5,
         float("inf"), float("-inf"), 2.0**-14, 2.0**-24, 2.0**-25, 1.5 * 2.0**-25, 2.0**-26,
         6e-8, 3e-5, -3e-5, 1e-40, -1e-45, 3.4028234e38, -3.4028234e38,
         1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-11, 1 + 3 * 2.0**-11, 2.0**-14 - 2.0**-25,
         (1 + 2.0**-8) * 2.0**-130, 1 + 2.0**-8 + 2.0**-20, 65536.0 * 2.0**100]
    return np.array(v, dtype=np.float32)


def fnv1a(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def all16(dtype):
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16)
    f = torch.from_numpy(bits.copy()).view(dtype).float().numpy().view(np.uint32)
    return fnv1a(f.astype("<u4").tobytes())


def main():
    rng = np.random.default_rng(20240501)
    rand = (rng.standard_normal(96) * 10.0 ** rng.uniform(-9, 9, 96)).astype(np.float32)
    src = np.concatenate([tricky(), rand])
    t = torch.from_numpy(src)
    i32 = np.array([0, 1, -1, 2**31 - 1, -2**31, 16777217, -16777217, 123456789], dtype=np.int32)
    i64 = np.array([0, -1, 2**53 + 1, -2**63, 2**63 - 1, 2**40 + 3, 16777217], dtype=np.int64)
    bits16 = lambda x: x.view(torch.int16).numpy().astype("<i2").tobytes()
    tensors = [  # (name, dtype, shape, bytes)
        ("src", "F32", [len(src)], src.astype("<f4").tobytes()),
        ("src_f16", "F16", [len(src)], bits16(t.half())),
        ("src_f16_f32", "F32", [len(src)], t.half().float().numpy().astype("<f4").tobytes()),
        ("src_bf16", "BF16", [len(src)], bits16(t.bfloat16())),
        ("src_bf16_f32", "F32", [len(src)], t.bfloat16().float().numpy().astype("<f4").tobytes()),
        ("src_f64", "F64", [len(src)], t.double().numpy().astype("<f8").tobytes()),
        ("ints_i32", "I32", [len(i32)], i32.astype("<i4").tobytes()),
        ("ints_i32_f32", "F32", [len(i32)], torch.from_numpy(i32).float().numpy().astype("<f4").tobytes()),
        ("ints_i64", "I64", [len(i64)], i64.astype("<i8").tobytes()),
        ("ints_i64_f32", "F32", [len(i64)], torch.from_numpy(i64).float().numpy().astype("<f4").tobytes()),
        ("scalar", "F32", [], np.array(3.5, dtype="<f4").tobytes()),
        ("empty", "F32", [0, 3], b""),
        ("mat", "BF16", [2, 3], bits16(torch.tensor([[1.0, -2.0, 0.5], [3.0, 1e-3, -7.25]]).bfloat16())),
        ("\u00fcn\u00ef\u2713 \U0001F600", "F32", [2], np.array([1.25, -4.0], dtype="<f4").tobytes()),
    ]
    header = {"__metadata__": {
        "format": "pt",
        "f16_all_fnv1a": all16(torch.float16),
        "bf16_all_fnv1a": all16(torch.bfloat16),
        "tricky \"string\"": "back\\slash\nnew line\ttab \u00e9",
    }}
    data, off = b"", 0
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("ascii")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    print("wrote %s (%d bytes, torch %s)" % (os.path.normpath(OUT), 8 + len(h) + len(data), torch.__version__))


if __name__ == "__main__":
    main()
