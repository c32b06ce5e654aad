#!/usr/bin/python3
"""Convert a PyTorch MViT checkpoint (.pth / .pyth) to a safetensors file (F32) with torchvision names.

    /usr/bin/python3 tests/ref/convert_pth.py IN.pth OUT.safetensors [--from-slowfast] [--check]
    /usr/bin/python3 tests/ref/convert_pth.py --self-test

IN may hold a state_dict, or a dict with the state_dict under 'model_state' (PySlowFast),
'state_dict' or 'model'. A leading 'module.' (DistributedDataParallel) is stripped.
Floating tensors are written as F32, integer tensors as I64.

--from-slowfast maps PySlowFast MViT (v1) names to torchvision mvit_v1_b names
(shared/MVIT.md section 11): patch_embed.proj -> conv_proj, cls_token / pos_embed_* ->
pos_encoding.* (batch dims squeezed), attn.q/k/v concatenated row-wise into attn.qkv,
attn.proj -> attn.project.0, attn.pool_X -> attn.pool_X.pool, attn.norm_X -> attn.pool_X.norm_act.0,
mlp.fc1/fc2 -> mlp.0/mlp.3, blocks.N.proj -> blocks.N.project, head.projection -> head.1.
Unknown names are an error (nothing is dropped silently).

--check builds a torchvision MViT with the mvit_v1_b block table, the stem, grid and class count
read off the converted tensors, and loads the result strictly (reports missing/unexpected keys).
"""
import argparse
import os
import re
import sys
from collections import OrderedDict

import torch

sys.dont_write_bytecode = True  # keep tests/ref free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_io import read_safetensors, write_safetensors  # noqa: E402


def load_state_dict(path):
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict):
        for key in ("model_state", "state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        bad = [k for k, v in obj.items() if not torch.is_tensor(v)][:5] if isinstance(obj, dict) else type(obj)
        raise SystemExit("%s: no state_dict found (non-tensor entries: %s)" % (path, bad))
    if obj and all(k.startswith("module.") for k in obj):
        obj = OrderedDict((k[len("module."):], v) for k, v in obj.items())
    return obj


_RENAMES = [  # (regex on the SlowFast name, torchvision replacement, reshape)
    (r"^patch_embed\.proj\.(weight|bias)$", r"conv_proj.\1", None),
    (r"^cls_token$", "pos_encoding.class_token", "vec"),
    (r"^pos_embed_spatial$", "pos_encoding.spatial_pos", "mat"),
    (r"^pos_embed_temporal$", "pos_encoding.temporal_pos", "mat"),
    (r"^pos_embed_class$", "pos_encoding.class_pos", "vec"),
    (r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", r"blocks.\1.attn.qkv.\2", None),
    (r"^blocks\.(\d+)\.attn\.proj\.(weight|bias)$", r"blocks.\1.attn.project.0.\2", None),
    (r"^blocks\.(\d+)\.attn\.pool_([qkv])\.weight$", r"blocks.\1.attn.pool_\2.pool.weight", None),
    (r"^blocks\.(\d+)\.attn\.norm_([qkv])\.(weight|bias)$", r"blocks.\1.attn.pool_\2.norm_act.0.\3", None),
    (r"^blocks\.(\d+)\.mlp\.fc1\.(weight|bias)$", r"blocks.\1.mlp.0.\2", None),
    (r"^blocks\.(\d+)\.mlp\.fc2\.(weight|bias)$", r"blocks.\1.mlp.3.\2", None),
    (r"^blocks\.(\d+)\.proj\.(weight|bias)$", r"blocks.\1.project.\2", None),
    (r"^blocks\.(\d+)\.(norm1|norm2)\.(weight|bias)$", r"blocks.\1.\2.\3", None),
    (r"^norm\.(weight|bias)$", r"norm.\1", None),
    (r"^head\.projection\.(weight|bias)$", r"head.1.\1", None),
]
_SPLIT_QKV = re.compile(r"^blocks\.(\d+)\.attn\.([qkv])\.(weight|bias)$")


def _order_key(name):
    """torchvision state_dict order: conv_proj, pos_encoding, blocks (numeric, module order), norm, head."""
    top = ["conv_proj.", "pos_encoding.", "blocks.", "norm.", "head."]
    t = next(i for i, p in enumerate(top) if name.startswith(p))
    pos = ["class_token", "spatial_pos", "temporal_pos", "class_pos"]
    inner = ["norm1.", "norm2.", "attn.qkv.", "attn.project.", "attn.pool_q.pool", "attn.pool_q.norm_act",
             "attn.pool_k.pool", "attn.pool_k.norm_act", "attn.pool_v.pool", "attn.pool_v.norm_act",
             "mlp.0.", "mlp.3.", "project."]
    if t == 1:
        return (t, pos.index(name.split(".")[1]), 0, name)
    if t == 2:
        _, n, rest = name.split(".", 2)
        j = next((i for i, p in enumerate(inner) if rest.startswith(p)), len(inner))
        return (t, int(n), j, 0 if rest.endswith("weight") else 1)
    return (t, 0, 0, 0 if name.endswith("weight") else 1)


def slowfast_to_torchvision(sd):
    out = {}
    split = {}
    unknown = []
    for k, v in sd.items():
        m = _SPLIT_QKV.match(k)
        if m:
            split.setdefault((int(m.group(1)), m.group(3)), {})[m.group(2)] = v
            continue
        for pat, rep, shape in _RENAMES:
            if re.match(pat, k):
                nk = re.sub(pat, rep, k)
                if shape == "vec":
                    v = v.reshape(-1)
                elif shape == "mat":
                    v = v.reshape(-1, v.shape[-1])
                if nk in out:
                    raise SystemExit("two SlowFast tensors map to %s" % nk)
                out[nk] = v
                break
        else:
            unknown.append(k)
    if "pos_embed" in sd:
        raise SystemExit("non-separable 'pos_embed' (SEP_POS_EMBED False) has no torchvision equivalent")
    if unknown:
        raise SystemExit("unknown SlowFast names (not converted): %s" % ", ".join(unknown))
    for (n, kind), parts in split.items():
        if set(parts) != {"q", "k", "v"}:
            raise SystemExit("blocks.%d.attn: incomplete split q/k/v %s (%s)" % (n, kind, sorted(parts)))
        nk = "blocks.%d.attn.qkv.%s" % (n, kind)
        if nk in out:
            raise SystemExit("%s present both fused and split" % nk)
        out[nk] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)   # rows [Wq; Wk; Wv]
    return OrderedDict(sorted(out.items(), key=lambda kv: _order_key(kv[0])))


def to_safetensors_dict(sd):
    out = OrderedDict()
    for k, v in sd.items():
        v = v.detach().cpu()
        if v.is_floating_point():
            v = v.float()
        elif v.dtype in (torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8):
            v = v.long()
        else:
            raise SystemExit("%s: unsupported dtype %s" % (k, v.dtype))
        out[k] = v.contiguous()
    return out


def check_against_torchvision(sd):
    """Load sd strictly into an MViT with the mvit_v1_b blocks, sized from the tensors themselves."""
    from torchvision.models.video.mvit import MViT
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_fixtures import block_setting
    kw = tuple(sd["conv_proj.weight"].shape[2:])
    pad = (kw[0] // 2 if kw[0] % 2 else 0, kw[1] // 2, kw[2] // 2)
    hw = sd["pos_encoding.spatial_pos"].shape[0]
    side = int(round(hw ** 0.5))
    if side * side != hw:
        raise SystemExit("spatial_pos has %d rows: not a square grid, give the size by hand" % hw)
    tg = sd["pos_encoding.temporal_pos"].shape[0]
    model = MViT(spatial_size=(4 * side, 4 * side), temporal_size=2 * tg, block_setting=block_setting("mvit-b"),
                 residual_pool=False, residual_with_cls_embed=False, rel_pos_embed=False, proj_after_attn=False,
                 num_classes=sd["head.1.weight"].shape[0], patch_embed_kernel=kw, patch_embed_padding=pad)
    res = model.load_state_dict({k: torch.as_tensor(v) for k, v in sd.items()}, strict=False)
    if res.missing_keys or res.unexpected_keys:
        raise SystemExit("check failed: missing %s, unexpected %s" % (res.missing_keys, res.unexpected_keys))
    return "mvit_v1_b blocks, stem %s pad %s, %dx%dx%d input, %d classes" % (
        kw, pad, 2 * tg, 4 * side, 4 * side, sd["head.1.weight"].shape[0])


def convert(src, dst, from_slowfast=False, check=False):
    sd = load_state_dict(src)
    if from_slowfast:
        sd = slowfast_to_torchvision(sd)
    sd = to_safetensors_dict(sd)
    meta = {"format": "pt", "source": os.path.basename(src), "converted_by": "tests/ref/convert_pth.py",
            "names": "torchvision (mvit_v1_b)"}
    if from_slowfast:
        meta["from"] = "PySlowFast"
    size = write_safetensors(dst, sd, meta)
    msg = "wrote %s: %d tensors, %d values, %d bytes" % (dst, len(sd), sum(v.numel() for v in sd.values()), size)
    if check:
        msg += "\ncheck ok: " + check_against_torchvision(sd)
    return msg


# ---------------------------------------------------------------- self test
def torchvision_to_slowfast(sd, split_qkv):
    """Inverse mapping (for the self test): torchvision names -> PySlowFast names and shapes."""
    out = OrderedDict()
    for k, v in sd.items():
        if k.startswith("conv_proj."):
            out["patch_embed.proj." + k.split(".")[1]] = v
        elif k == "pos_encoding.class_token":
            out["cls_token"] = v.reshape(1, 1, -1)
        elif k == "pos_encoding.spatial_pos":
            out["pos_embed_spatial"] = v.unsqueeze(0)
        elif k == "pos_encoding.temporal_pos":
            out["pos_embed_temporal"] = v.unsqueeze(0)
        elif k == "pos_encoding.class_pos":
            out["pos_embed_class"] = v.reshape(1, 1, -1)
        elif k.startswith("head.1."):
            out["head.projection." + k.split(".")[-1]] = v
        elif k.startswith("norm."):
            out[k] = v
        else:
            m = re.match(r"^blocks\.(\d+)\.(.*)$", k)
            b, rest = "blocks.%s." % m.group(1), m.group(2)
            rest = re.sub(r"^attn\.project\.0\.", "attn.proj.", rest)
            rest = re.sub(r"^attn\.pool_([qkv])\.pool\.weight$", r"attn.pool_\1.weight", rest)
            rest = re.sub(r"^attn\.pool_([qkv])\.norm_act\.0\.", r"attn.norm_\1.", rest)
            rest = re.sub(r"^mlp\.0\.", "mlp.fc1.", rest)
            rest = re.sub(r"^mlp\.3\.", "mlp.fc2.", rest)
            rest = re.sub(r"^project\.", "proj.", rest)
            if split_qkv and rest.startswith("attn.qkv."):
                kind = rest.split(".")[-1]
                q, kk, vv = v.chunk(3, dim=0)
                out[b + "attn.q." + kind], out[b + "attn.k." + kind], out[b + "attn.v." + kind] = q, kk, vv
            else:
                out[b + rest] = v
    return out


def self_test():
    import tempfile
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.video.mvit_v1_b()
    ref = model.state_dict()
    names = list(ref)
    ok = True
    with tempfile.TemporaryDirectory() as d:
        cases = [
            ("plain state_dict", ref, False),
            ("{'model_state': sd} (SlowFast style wrapper)", {"model_state": ref, "epoch": 3}, False),
            ("{'state_dict': DDP 'module.' sd}", {"state_dict": OrderedDict(("module." + k, v) for k, v in ref.items())}, False),
            ("SlowFast names, fused qkv", {"model_state": torchvision_to_slowfast(ref, False)}, True),
            ("SlowFast names, split q/k/v", {"model_state": torchvision_to_slowfast(ref, True)}, True),
        ]
        for label, obj, sf in cases:
            src, dst = os.path.join(d, "in.pth"), os.path.join(d, "out.safetensors")
            torch.save(obj, src)
            msg = convert(src, dst, from_slowfast=sf, check=True)
            back, meta = read_safetensors(dst)
            same = list(back) == names and all(
                back[k].dtype.name == "float32" and torch.equal(torch.from_numpy(back[k].copy()), ref[k]) for k in names)
            m2 = torchvision.models.video.mvit_v1_b()
            m2.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in back.items()}, strict=True)
            print("%s %s: %d tensors, bit-identical and in torchvision order: %s; %s" % (
                "ok  " if same else "FAIL", label, len(back), same, msg.splitlines()[-1]))
            ok &= same
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", nargs="?")
    ap.add_argument("dst", nargs="?")
    ap.add_argument("--from-slowfast", action="store_true", help="map PySlowFast MViT names to torchvision names")
    ap.add_argument("--check", action="store_true", help="load the result strictly into a torchvision MViT (mvit_v1_b blocks)")
    ap.add_argument("--self-test", action="store_true", help="round-trip torchvision's mvit_v1_b state_dict")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.self_test:
        sys.exit(0 if self_test() else 1)
    if not a.src or not a.dst:
        ap.error("need IN and OUT (or --self-test)")
    print(convert(a.src, a.dst, a.from_slowfast, a.check))


if __name__ == "__main__":
    main()
