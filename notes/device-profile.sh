#!/usr/bin/env bash
# Per-op GPU profile of the MViT-B benchmark (SCVRL_PROFILE=1: GPU ms per op kind and the slowest
# nodes, summed over every compute of the run), batch ${B:-16}, precision ${P:-bf16}: forward only, then
# forward + forward+backward. Logs to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
run() {  # name precision extra-flags
  SCVRL_PROFILE=1 ./examples/bench mvit --model mvit-b --batch ${B:-16} --device cuda --precision $2 --reps 2 --warmup 1 $3 \
    > "$OUT/prof-$1.log" 2>&1
  echo "== $1"; grep -E "per clip|max_rel" "$OUT/prof-$1.log" | head -3; sed -n '/scvrl profile/,$p' "$OUT/prof-$1.log" | head -${4:-45}
}
run ${P:-bf16}-fwd ${P:-bf16} --fwd-only 22
run ${P:-bf16} ${P:-bf16} "" 34
