#!/usr/bin/env bash
# Per-op GPU profile of the MViT-B benchmark (SCVRL_PROFILE=1: GPU ms per op kind and the slowest
# nodes, summed over every compute of the run), batch ${B:-16}: TF32 forward only, then float32
# and TF32 forward + forward+backward. Logs to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
run() {  # name tf32 extra-flags
  SCVRL_CUDA_TF32=$2 SCVRL_PROFILE=1 ./examples/bench mvit --model mvit-b --batch ${B:-16} --device cuda --reps 2 --warmup 1 $3 \
    > "$OUT/prof-$1.log" 2>&1
  echo "== $1"; grep -E "per clip|max_rel" "$OUT/prof-$1.log" | head -3; sed -n '/scvrl profile/,$p' "$OUT/prof-$1.log" | head -${4:-45}
}
run tf32-fwd 1 --fwd-only 22
run fp32 0 "" 14
run tf32 1 "" 34
