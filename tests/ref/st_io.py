"""Minimal safetensors reader/writer (no `safetensors` package needed).

File layout: 8-byte little-endian header length N, then N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}
padded with spaces to a multiple of 8, then the data buffer (little-endian,
row-major, tensors back to back in header order, no gaps).

write_safetensors orders tensors by element size (8-byte dtypes first, then 4, 2, 1;
insertion order kept within a size) so that, with the 8-byte aligned buffer start,
every tensor starts at a multiple of its own element size.
"""
import json
import os
import struct

import numpy as np

_DT = {
    np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
    np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL",
}
_NP = {v: k for k, v in _DT.items()}


def _to_numpy(t):
    if hasattr(t, "detach"):  # torch tensor
        import torch
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            raise TypeError("bf16 not supported by this writer")
        t = t.contiguous().numpy()
    return np.ascontiguousarray(t)


def write_safetensors(path, tensors, metadata=None):
    arrs = [(k, _to_numpy(v)) for k, v in tensors.items()]
    for k, a in arrs:
        if a.dtype not in _DT:
            raise TypeError("%s: unsupported dtype %s" % (k, a.dtype))
    order = sorted(range(len(arrs)), key=lambda i: (-arrs[i][1].dtype.itemsize, i))
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    off = 0
    blobs = []
    for i in order:
        k, a = arrs[i]
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[k] = {"dtype": _DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return os.path.getsize(path)


def read_safetensors(path):
    """Returns (dict name -> numpy array, metadata dict); checks the layout strictly."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    spans = []
    for k, info in header.items():
        dt = _NP[info["dtype"]].newbyteorder("<")
        b, e = info["data_offsets"]
        cnt = int(np.prod(info["shape"], dtype=np.int64)) if info["shape"] else 1
        assert e - b == cnt * dt.itemsize, k
        out[k] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).astype(dt.newbyteorder("="))
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:
        assert b == pos, "gap or overlap in data buffer"
        pos = e
    assert pos == len(data), "trailing bytes after data buffer"
    return out, meta
