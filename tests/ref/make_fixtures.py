#!/usr/bin/python3
"""Makes the committed parity fixtures in tests/data/ from torchvision's MViT.

Run with Debian's PyTorch:  /usr/bin/python3 tests/ref/make_fixtures.py [--only NAME ...] [--list]

Every number in a fixture comes from a generator the C side reimplements (scvrl_rng.py):
weights, input clip, loss weights and gradient subsets; only outputs are stored.
See tests/ref/README.md for the exact recipes and the file contents.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torchvision
from torchvision.models.video.mvit import MSBlockConfig, MViT

sys.dont_write_bytecode = True  # keep tests/ref free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scvrl_rng import fnv1a64, rng_u64, rng_u64_np, rng_uniform, rng_uniform_np  # noqa: E402
from st_io import read_safetensors, write_safetensors  # noqa: E402

torch.set_num_threads(2)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")

SEED_WEIGHTS = 1234
SEED_INPUT = 99
SEED_DLOSS = 7
SEED_SUBSET = 5
SUBSET_K = 256
NUM_CLASSES = 400

# ---------------------------------------------------------------- model presets
# (heads, C_in, C_out, Q stride or None, KV stride); every pool kernel is 3x3x3.
MVIT_B = [
    (1, 96, 192, None, (1, 8, 8)),
    (2, 192, 192, (1, 2, 2), (1, 4, 4)),
    (2, 192, 384, None, (1, 4, 4)),
    (4, 384, 384, (1, 2, 2), (1, 2, 2)),
] + [(4, 384, 384, None, (1, 2, 2))] * 9 + [
    (4, 384, 768, None, (1, 2, 2)),
    (8, 768, 768, (1, 2, 2), (1, 1, 1)),
    (8, 768, 768, None, (1, 1, 1)),
]
MVIT_S = [
    (1, 96, 192, None, (1, 8, 8)),
    (2, 192, 192, (1, 2, 2), (1, 4, 4)),
    (2, 192, 384, None, (1, 4, 4)),
    (4, 384, 384, (1, 2, 2), (1, 2, 2)),
    (4, 384, 384, None, (1, 2, 2)),
    (4, 384, 768, None, (1, 2, 2)),
    (8, 768, 768, (1, 2, 2), (1, 1, 1)),
    (8, 768, 768, None, (1, 1, 1)),
]
MVIT_TINY = [
    (1, 32, 64, None, (1, 4, 4)),
    (2, 64, 128, (1, 2, 2), (1, 2, 2)),
    (4, 128, 256, (1, 2, 2), (1, 1, 1)),
    (8, 256, 256, None, (1, 1, 1)),
]
PRESETS = {"mvit-b": MVIT_B, "mvit-s": MVIT_S, "mvit-tiny": MVIT_TINY}
STEMS = {  # kt -> (kernel, stride, padding)
    2: ((2, 7, 7), (2, 4, 4), (0, 3, 3)),   # SCVRL
    3: ((3, 7, 7), (2, 4, 4), (1, 3, 3)),   # torchvision / SlowFast original
}


def block_setting(preset):
    out = []
    for heads, cin, cout, qs, kvs in PRESETS[preset]:
        out.append(MSBlockConfig(
            num_heads=heads, input_channels=cin, output_channels=cout,
            kernel_q=[3, 3, 3] if qs else [], kernel_kv=[3, 3, 3],
            stride_q=list(qs) if qs else [], stride_kv=list(kvs)))
    return out


def block_setting_json(preset):
    return json.dumps([{"heads": h, "c_in": ci, "c_out": co, "q_stride": list(qs) if qs else None,
                        "kv_stride": list(kvs), "kernel": [3, 3, 3]}
                       for h, ci, co, qs, kvs in PRESETS[preset]], separators=(",", ":"))


def build(preset, kt, T, H, W, stochastic_depth_prob=0.0, dropout=0.5):
    k, s, p = STEMS[kt]
    return MViT(spatial_size=(H, W), temporal_size=T, block_setting=block_setting(preset),
                residual_pool=False, residual_with_cls_embed=False, rel_pos_embed=False,
                proj_after_attn=False, dropout=dropout, attention_dropout=0.0,
                stochastic_depth_prob=stochastic_depth_prob, num_classes=NUM_CLASSES,
                patch_embed_kernel=k, patch_embed_stride=s, patch_embed_padding=p)


# ---------------------------------------------------------------- generated tensors
def init_kind(name):
    if name.startswith("pos_encoding."):
        return "pos"
    if name.endswith(".bias"):
        return "bias"
    if name.endswith(".weight") and "norm" in name:
        return "ln_weight"
    return "weight"


def gen_param(name, shape):
    """float64 recipe, then rounded once to float32 (the fixture model holds these float32 values)."""
    n = int(np.prod(shape))
    u = rng_uniform_np(SEED_WEIGHTS, fnv1a64(name), n)
    r = 2.0 * u - 1.0                      # exact
    kind = init_kind(name)
    if kind == "pos":
        v = 0.5 * r
    elif kind == "bias":
        v = 0.2 * r
    elif kind == "ln_weight":
        v = 1.0 + 0.2 * r                  # (0.2*r) rounded to double, then 1 + that, rounded to double
    else:
        fan_in = n // shape[0]
        v = r * math.sqrt(3.0 / fan_in)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def init_model(model):
    sd = model.state_dict()
    new = {k: gen_param(k, tuple(v.shape)) for k, v in sd.items()}
    model.load_state_dict(new, strict=True)
    return new


def gen_uniform_pm1(seed, stream_name, shape, dtype=torch.float64):
    n = int(np.prod(shape))
    return torch.from_numpy((2.0 * rng_uniform_np(seed, fnv1a64(stream_name), n) - 1.0).reshape(shape)).to(dtype)


def subset_indices(name, numel):
    if numel <= SUBSET_K:
        return np.arange(numel, dtype=np.int64)
    return (rng_u64_np(SEED_SUBSET, fnv1a64("subset." + name), SUBSET_K) % np.uint64(numel)).astype(np.int64)


# ---------------------------------------------------------------- running a model
def run_model(model, x, want_grads):
    """Forward (and backward of L) in the model's dtype. Returns dict of numpy arrays."""
    caught = {}
    h = model.norm.register_forward_hook(lambda m, i, o: caught.__setitem__("tok", o))
    try:
        with torch.set_grad_enabled(want_grads):
            logits = model(x)
    finally:
        h.remove()
    tok = caught["tok"]
    feats = tok[:, 0]
    feats_avg = tok[:, 1:].mean(dim=1)
    out = {"features": feats, "features_avg": feats_avg, "logits": logits}
    grads = {}
    if want_grads:
        Rf = gen_uniform_pm1(SEED_DLOSS, "dloss.features", tuple(feats.shape), feats.dtype)
        Rl = gen_uniform_pm1(SEED_DLOSS, "dloss.logits", tuple(logits.shape), logits.dtype)
        model.zero_grad(set_to_none=True)
        L = (feats * Rf).sum() + (logits * Rl).sum()
        L.backward()
        for n, p in model.named_parameters():
            idx = subset_indices(n, p.numel())
            grads[n] = (idx, p.grad.detach().reshape(-1)[torch.from_numpy(idx)].double().numpy())
        out["loss"] = L
    return {k: v.detach().double().numpy() for k, v in out.items()}, grads


def skip_pool_gaps(model, x):
    """For each skip max pool: the smallest gap between the largest and second largest value of a window.

    A gap near float32 rounding means a float32 implementation may take another argmax there, which moves
    that element's gradient (and so every gradient upstream) by ~1e-4 relative against the float64 reference."""
    seen = {}
    hooks = []
    for i, b in enumerate(model.blocks):
        if b.pool_skip is not None:
            def hook(m, inp, out, i=i):
                seen[i] = (inp[0].detach(), m.kernel_size, m.stride, m.padding)
            hooks.append(b.pool_skip.pool.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    res = {}
    for i, (t, k, s, p) in seen.items():
        tp = torch.nn.functional.pad(t, (p[2], p[2], p[1], p[1], p[0], p[0]), value=-math.inf)
        w = tp.unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).unfold(4, k[2], s[2]).reshape(-1, k[0] * k[1] * k[2])
        top = torch.topk(w, 2, dim=1).values
        gap = top[:, 0] - top[:, 1]
        rms = float(t.pow(2).mean().sqrt())
        res[str(i)] = {"min_gap": float(gap.min()), "input_rms": rms, "windows": int(gap.numel()),
                       "windows_gap_below_1e-6_rms": int((gap < 1e-6 * rms).sum())}
    return res


def write_checked(path, tensors, meta):
    """write_safetensors, then read the file back and check every tensor and metadata value."""
    size = write_safetensors(path, tensors, meta)
    back, bmeta = read_safetensors(path)
    assert set(back) == set(tensors) and bmeta == {k: str(v) for k, v in meta.items()}, path
    for k, v in tensors.items():
        v = v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v), (path, k)
    return size


def rel_err(a, b):
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    d = np.linalg.norm(a - b)
    nb = np.linalg.norm(b)
    return float(d / nb) if nb > 0 else float(d)


def max_rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def versions():
    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__}


def base_meta(preset, kt, B, T, H, W):
    k, s, p = STEMS[kt]
    m = {
        "model": preset, "kt": str(kt), "B": str(B), "T": str(T), "H": str(H), "W": str(W),
        "patch_embed_kernel": json.dumps(list(k)), "patch_embed_stride": json.dumps(list(s)),
        "patch_embed_padding": json.dumps(list(p)), "blocks": block_setting_json(preset),
        "embed_dim": str(PRESETS[preset][0][1]), "num_classes": str(NUM_CLASSES), "layer_norm_eps": "1e-6",
        "seed_weights": str(SEED_WEIGHTS), "seed_input": str(SEED_INPUT), "input_stream": "input",
        "weights": "u=rng_uniform(1234,fnv1a64(name),i); pos_encoding.*: 0.5*(2u-1); *.bias: 0.2*(2u-1); "
                   "*norm*.weight: 1+0.2*(2u-1); other weights: (2u-1)*sqrt(3/fan_in), fan_in=numel/shape[0]; "
                   "computed in float64, rounded once to float32; the reference runs those float32 values in float64",
        "input": "x[B,3,T,H,W] = 2*rng_uniform(99,fnv1a64('input'),i)-1 over the flat index (exact in float32)",
        "reference": "torchvision MViT, model.double() and x.double(), eval mode (dropout/stochastic depth off)",
        "features": "CLS token after the final norm [B,D]",
        "features_avg": "mean over the grid tokens (CLS excluded) after the final norm [B,D]",
    }
    m.update(versions())
    return m


def fixture_forward(name, preset, kt, B, T, H, W, with_grads, f32=True):
    t0 = time.time()
    model = build(preset, kt, T, H, W, stochastic_depth_prob=0.2 if preset == "mvit-b" else 0.0)
    params = init_model(model)
    model.eval()
    t_init = time.time() - t0
    x = gen_uniform_pm1(SEED_INPUT, "input", (B, 3, T, H, W), torch.float64)

    m64 = copy.deepcopy(model).double().eval()
    t1 = time.time()
    r64, g64 = run_model(m64, x, with_grads)
    t_ref = time.time() - t1
    gaps = skip_pool_gaps(m64, x)
    del m64

    # same model in float32 (the numbers PyTorch itself gives; for the tolerance a C test may expect)
    t2 = time.time()
    r32, g32 = run_model(model.float().eval(), x.float(), with_grads) if f32 else (None, None)
    t_f32 = time.time() - t2

    meta = base_meta(preset, kt, B, T, H, W)
    meta["num_params"] = str(sum(int(v.numel()) for v in params.values()))
    meta["num_param_tensors"] = str(len(params))
    meta["skip_pool_min_gap"] = json.dumps(gaps, separators=(",", ":"))
    errs = {}
    for k in (("features", "features_avg", "logits") if f32 else ()):
        errs["f32_vs_f64_rel_err_" + k] = rel_err(r32[k], r64[k])
        errs["f32_vs_f64_maxrel_err_" + k] = max_rel_err(r32[k], r64[k])
    tensors = {"input_shape": np.array([B, 3, T, H, W], dtype=np.int64),
               "features": r64["features"], "features_avg": r64["features_avg"], "logits": r64["logits"]}
    if with_grads:
        meta["loss"] = ("L = sum(features*Rf) + sum(logits*Rl); Rf = 2*rng_uniform(7,fnv1a64('dloss.features'),i)-1, "
                        "Rl = 2*rng_uniform(7,fnv1a64('dloss.logits'),i)-1 over the flat index")
        meta["grad_subset"] = ("numel<=256: all indices in order; else idx_j = rng_u64(5,fnv1a64('subset.'+name),j) % numel, "
                               "j<256 (repeats allowed); grad.<name> = dL/dparam.flatten()[idx]")
        meta["loss_value"] = repr(float(r64["loss"]))
        zero = [n for n in g64 if n.endswith("attn.pool_k.norm_act.0.bias")]
        meta["grads_analytically_zero"] = json.dumps(zero)
        meta["grads_analytically_zero_note"] = (
            "the K-pool LayerNorm bias adds the same q.b to every logit of a softmax row, so its gradient is exactly 0; "
            "the stored values are float64 rounding noise: compare them with an absolute tolerance")
    if with_grads and f32:
        gnum = np.concatenate([g64[n][1] for n in g64])
        gf32 = np.concatenate([g32[n][1] for n in g64])
        errs["f32_vs_f64_rel_err_grads"] = rel_err(gf32, gnum)
        per = [rel_err(g32[n][1], g64[n][1]) for n in g64]
        per_nz = [(e, n) for e, n in zip(per, g64) if n not in zero]
        errs["f32_vs_f64_rel_err_grads_worst_tensor"] = max(per_nz)[0]
        errs["f32_vs_f64_rel_err_grads_worst_tensor_name"] = max(per_nz)[1]
        meta["f32_vs_f64_rel_err_grad_per_tensor"] = json.dumps({n: float("%.3e" % e) for n, e in zip(g64, per)},
                                                                separators=(",", ":"))
    if with_grads:
        for n, (idx, g) in g64.items():
            tensors["grad_idx." + n] = idx
            tensors["grad." + n] = g
    for k, v in errs.items():
        meta[k] = v if isinstance(v, str) else "%.3e" % v
    path = os.path.join(DATA, name + ".safetensors")
    size = write_checked(path, tensors, meta)
    info = {"path": path, "size": size, "t_init": t_init, "t_ref64": t_ref, "t_f32": t_f32, "errs": errs, "gaps": gaps}
    return info, model, params


def fixture_droppath(name, n_passes=200):
    preset, kt, B, T, H, W = "mvit-tiny", 2, 2, 8, 64, 64
    t0 = time.time()
    model = build(preset, kt, T, H, W, stochastic_depth_prob=0.2, dropout=0.0)
    init_model(model)
    model = model.double()
    x = gen_uniform_pm1(SEED_INPUT, "input", (B, 3, T, H, W), torch.float64)
    model.eval()
    r_eval, _ = run_model(model, x, False)
    model.train()
    torch.manual_seed(0)
    acc = np.zeros_like(r_eval["features"])
    acc2 = np.zeros_like(acc)
    for _ in range(n_passes):
        r, _ = run_model(model, x, False)
        acc += r["features"]
        acc2 += r["features"] ** 2
    mean = acc / n_passes
    std = np.sqrt(np.maximum(acc2 / n_passes - mean ** 2, 0.0))
    sem = std / math.sqrt(n_passes)
    rates = [b.stochastic_depth.p for b in model.blocks]
    meta = base_meta(preset, kt, B, T, H, W)
    meta.update({
        "mode": "train (stochastic depth rate_i = 0.2*i/(depth-1), mode row; dropout 0; attention dropout 0)",
        "stochastic_depth_rates": json.dumps(rates),
        "n_passes": str(n_passes), "torch_manual_seed": "0",
        "note": ("not bit-parity (torch's RNG draws the drops). The train-mode expectation is NOT the eval output "
                 "(everything after a dropped branch is nonlinear): compare a C mean over n train passes with "
                 "mean_train_features within a few std_train_features*sqrt(1/n + 1/n_passes), not with features"),
        "rel_err_mean_train_vs_eval": "%.3e" % rel_err(mean, r_eval["features"]),
        "max_abs_diff_over_sem": "%.3f" % float(np.max(np.abs(mean - r_eval["features"]) / np.maximum(sem, 1e-300))),
    })
    tensors = {"input_shape": np.array([B, 3, T, H, W], dtype=np.int64),
               "features": r_eval["features"], "mean_train_features": mean, "std_train_features": std}
    path = os.path.join(DATA, name + ".safetensors")
    size = write_checked(path, tensors, meta)
    return {"path": path, "size": size, "t": time.time() - t0,
            "rel_err_mean_train_vs_eval": rel_err(mean, r_eval["features"]),
            "rel_std": float(np.linalg.norm(std) / np.linalg.norm(r_eval["features"])),
            "max_abs_diff_over_sem": float(np.max(np.abs(mean - r_eval["features"]) / sem))}


# ---------------------------------------------------------------- AdamW + clipping + EMA
ADAMW_SHAPES = {"w1": (7, 5), "b1": (5,), "w2": (3, 4, 2)}
ADAMW_LR = [1e-3, 2e-3, 1.5e-3, 1e-3, 5e-4]
EMA_M = 0.99


def adamw_run(dtype):
    ps = {n: torch.nn.Parameter(gen_uniform_pm1(11, "adamw.p." + n, s, dtype)) for n, s in ADAMW_SHAPES.items()}
    order = [ps["w1"], ps["b1"], ps["w2"]]
    opt = torch.optim.AdamW([{"params": [ps["w1"], ps["w2"]], "weight_decay": 0.05},
                             {"params": [ps["b1"]], "weight_decay": 0.0}],
                            lr=ADAMW_LR[0], betas=(0.9, 0.999), eps=1e-8)
    k = gen_uniform_pm1(13, "ema.k", (10,), dtype)
    out = {"init": {n: p.detach().clone() for n, p in ps.items()}, "ema_init": k.clone(),
           "steps": [], "norms": [], "grads": [], "ema": []}
    for s, lr in enumerate(ADAMW_LR):
        gs = {n: 3.0 * gen_uniform_pm1(12, "adamw.g.%s.%d" % (n, s), sh, torch.float64) for n, sh in ADAMW_SHAPES.items()}
        for n, p in ps.items():
            p.grad = gs[n].to(dtype)      # float32: 3*(2u-1) rounded once
        out["grads"].append({n: ps[n].grad.clone() for n in ps})
        tn = torch.nn.utils.clip_grad_norm_(order, max_norm=1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        out["norms"].append(tn.detach().clone())
        out["steps"].append({n: p.detach().clone() for n, p in ps.items()})
        with torch.no_grad():
            k.mul_(EMA_M).add_(ps["w1"].reshape(-1)[:10], alpha=1.0 - EMA_M)
        out["ema"].append(k.clone())
    return out


def fixture_adamw(name):
    t0 = time.time()
    r32 = adamw_run(torch.float32)
    r64 = adamw_run(torch.float64)
    tensors = {"lr": np.array(ADAMW_LR, dtype=np.float64),
               "total_norm": torch.stack(r32["norms"]), "total_norm64": torch.stack(r64["norms"])}
    for n in ADAMW_SHAPES:
        tensors["p.%s.init" % n] = r32["init"][n]
    for s in range(len(ADAMW_LR)):
        for n in ADAMW_SHAPES:
            tensors["g.%s.%d" % (n, s)] = r32["grads"][s][n]
    for s in range(len(ADAMW_LR)):
        for n in ADAMW_SHAPES:
            tensors["p.%s.%d" % (n, s)] = r32["steps"][s][n]
            tensors["p64.%s.%d" % (n, s)] = r64["steps"][s][n]
    tensors["ema.k.init"] = r32["ema_init"]
    for s in range(len(ADAMW_LR)):
        tensors["ema.k.%d" % s] = r32["ema"][s]
        tensors["ema64.k.%d" % s] = r64["ema"][s]
    meta = {
        "params": "w1 [7,5], b1 [5], w2 [3,4,2]: 2*rng_uniform(11,fnv1a64('adamw.p.'+n),i)-1",
        "grads": "step s: g = 3*(2*rng_uniform(12,fnv1a64('adamw.g.'+n+'.'+str(s)),i)-1) (float32: rounded once; stored as g.<n>.<s>)",
        "clip": "torch.nn.utils.clip_grad_norm_([w1,b1,w2], max_norm=1.0): total=||(||w1||,||b1||,||w2||)||, "
                "coef=min(1, 1/(total+1e-6)) (tensor math in the param dtype), grads *= coef; total_norm[s] is the returned norm",
        "optimizer": "torch.optim.AdamW groups [w1,w2] wd 0.05 and [b1] wd 0.0, betas (0.9,0.999), eps 1e-8, lr[s] set per step; "
                     "p*=1-lr*wd; m=b1*m+(1-b1)*g; v=b2*v+(1-b2)*g*g; p-= lr/(1-b1^t) * m/(sqrt(v)/sqrt(1-b2^t)+eps)",
        "outputs": "p.<n>.<s>: float32 run after step s; p64.<n>.<s>: the same in float64 (grads unrounded)",
        "ema": "k0 = 2*rng_uniform(13,fnv1a64('ema.k'),i)-1 [10]; after step s: k = k*0.99 + (1-0.99)*w1.flatten()[:10] "
               "(torch: k.mul_(m).add_(q, alpha=1-m)); ema.k.<s> float32, ema64.k.<s> float64",
    }
    meta.update(versions())
    path = os.path.join(DATA, name + ".safetensors")
    size = write_checked(path, tensors, meta)
    return {"path": path, "size": size, "t": time.time() - t0}


# ---------------------------------------------------------------- small text fixtures
def write_rng_values():
    path = os.path.join(DATA, "rng_values.txt")
    L = ["# tests/data/rng_values.txt: reference values of scvrl's RNG (tests/ref/scvrl_rng.py).",
         "# One value per line, fields separated by one space:",
         "#   fnv1a64 STRING HEX                  FNV-1a 64 of the UTF-8 bytes of STRING",
         "#   rng_u64 SEED STREAM I HEX          SEED, STREAM, I in decimal",
         "#   rng_uniform SEED STREAM I VALUE    VALUE as %.17g (exact in float32)",
         "#   weight NAME I VALUE                fixture weight recipe (tests/ref/README.md), float32 value as %.9g"]
    for s in ["a", "input", "dloss.features", "dloss.logits", "ema.k", "adamw.p.w1",
              "subset.blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.weight"]:
        L.append("fnv1a64 %s 0x%016x" % (s, fnv1a64(s)))
    cases = [(1, 2, i) for i in range(4)] + [(0, 0, 0), (1234, fnv1a64("blocks.0.attn.qkv.weight"), 0),
                                             (99, fnv1a64("input"), 0), (99, fnv1a64("input"), 1),
                                             (5, 7, (1 << 40) + 5), (2 ** 64 - 1, 2 ** 64 - 1, 2 ** 64 - 1)]
    for seed, stream, i in cases:
        L.append("rng_u64 %d %d %d 0x%016x" % (seed, stream, i, rng_u64(seed, stream, i)))
    for seed, stream, i in cases:
        L.append("rng_uniform %d %d %d %.17g" % (seed, stream, i, rng_uniform(seed, stream, i)))
    for n, shape in [("conv_proj.weight", (96, 3, 2, 7, 7)), ("conv_proj.bias", (96,)),
                     ("pos_encoding.class_token", (96,)), ("blocks.0.norm1.weight", (96,)),
                     ("blocks.0.attn.qkv.weight", (288, 96)), ("blocks.1.attn.pool_q.pool.weight", (96, 1, 3, 3, 3))]:
        v = gen_param(n, shape).reshape(-1)
        for i in (0, 1, int(v.numel()) - 1):
            L.append("weight %s %d %.9g" % (n, i, float(v[i])))
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")
    return {"path": path, "size": os.path.getsize(path)}


def write_param_list(name, model):
    """Name, shape, recipe kind, float32 value at index 0 and float64 sum of the generated values."""
    path = os.path.join(DATA, "params_" + name + ".txt")
    L = ["# params of %s as generated by tests/ref/make_fixtures.py (state_dict order)" % name,
         "# NAME SHAPE KIND FAN_IN FIRST(%.9g of the float32 value) SUM(%.17g, float64 sum of the float32 values)"]
    total = 0
    for n, v in model.state_dict().items():
        kind = init_kind(n)
        fan = str(v.numel() // v.shape[0]) if kind == "weight" else "-"
        total += v.numel()
        L.append("%s %s %s %s %.9g %.17g" % (n, "x".join(map(str, v.shape)), kind, fan, float(v.reshape(-1)[0]),
                                             float(v.double().sum())))
    L.append("# total %d tensors, %d params" % (len(model.state_dict()), total))
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")
    return {"path": path, "size": os.path.getsize(path)}


def check_mvit_b_config():
    """Our MVIT_B preset with the kt3 stem at 16x224 must be exactly torchvision's mvit_v1_b."""
    ref = torchvision.models.video.mvit_v1_b()
    ours = build("mvit-b", 3, 16, 224, 224, stochastic_depth_prob=0.2)
    assert str(ref) == str(ours), "module tree differs from mvit_v1_b"
    a = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert list(a.items()) == list(b.items()), "state_dict names/shapes differ from mvit_v1_b"
    return len(a), sum(int(np.prod(s)) for s in a.values())


FIXTURES = ["rng_values", "mvit_b_kt2_8x64", "mvit_b_kt3_8x64", "mvit_b_kt2_16x224", "mvit_tiny_kt2_8x64",
            "mvit_s_kt2_8x64", "mvit_tiny_kt2_8x64_droppath", "adamw"]
FWD = {  # name: (preset, kt, B, T, H, W, grads)
    "mvit_b_kt2_8x64": ("mvit-b", 2, 2, 8, 64, 64, True),
    "mvit_b_kt3_8x64": ("mvit-b", 3, 2, 8, 64, 64, False),
    "mvit_b_kt2_16x224": ("mvit-b", 2, 1, 16, 224, 224, False),
    "mvit_tiny_kt2_8x64": ("mvit-tiny", 2, 2, 8, 64, 64, True),
    "mvit_s_kt2_8x64": ("mvit-s", 2, 2, 8, 64, 64, False),
}
PARAM_LISTS = {"mvit_b_kt2_8x64", "mvit_tiny_kt2_8x64", "mvit_s_kt2_8x64"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=FIXTURES, help="make only this fixture (repeatable)")
    ap.add_argument("--list", action="store_true", help="list fixture names and exit")
    ap.add_argument("--skip-config-check", action="store_true", help="skip the mvit_v1_b equality check")
    ap.add_argument("--no-f32", action="store_true", help="skip the float32 runs (the f32_vs_f64_* metadata)")
    args = ap.parse_args()
    if args.list:
        print("\n".join(FIXTURES))
        return
    todo = args.only or FIXTURES
    os.makedirs(DATA, exist_ok=True)
    print("torch %s, torchvision %s, numpy %s, threads %d" % (torch.__version__, torchvision.__version__,
                                                            np.__version__, torch.get_num_threads()))
    if not args.skip_config_check and any(n.startswith("mvit_b") for n in todo):
        t = time.time()
        n, p = check_mvit_b_config()
        print("check: MVIT_B preset + kt3 stem at 16x224 == torchvision mvit_v1_b (%d tensors, %d params) [%.1fs]"
              % (n, p, time.time() - t))
    t_all = time.time()
    for name in todo:
        t = time.time()
        if name == "rng_values":
            info = write_rng_values()
        elif name in FWD:
            preset, kt, B, T, H, W, grads = FWD[name]
            info, model, _ = fixture_forward(name, preset, kt, B, T, H, W, grads, f32=not args.no_f32)
            print("  %s: init %.1fs, float64 ref %.1fs, float32 run %.1fs" % (name, info["t_init"], info["t_ref64"], info["t_f32"]))
            print("    skip max pool top-2 gaps: %s" % info["gaps"])
            for k, v in info["errs"].items():
                print("    %s = %s" % (k, v if isinstance(v, str) else "%.3e" % v))
            if name in PARAM_LISTS:
                pi = write_param_list(name, model)
                print("wrote %s (%d bytes)" % (os.path.relpath(pi["path"], ROOT), pi["size"]))
        elif name == "mvit_tiny_kt2_8x64_droppath":
            info = fixture_droppath(name)
            print("    rel_err(mean of 200 train passes, eval) = %.3e, rel. per-pass std = %.3e, max |diff|/sem = %.2f"
                  % (info["rel_err_mean_train_vs_eval"], info["rel_std"], info["max_abs_diff_over_sem"]))
        elif name == "adamw":
            info = fixture_adamw(name)
        print("wrote %s (%d bytes) in %.1fs" % (os.path.relpath(info["path"], ROOT), info["size"], time.time() - t))
        sys.stdout.flush()
    tot = sum(os.path.getsize(os.path.join(DATA, f)) for f in os.listdir(DATA))
    print("done in %.1fs; tests/data holds %d bytes" % (time.time() - t_all, tot))


if __name__ == "__main__":
    main()
