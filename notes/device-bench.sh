#!/usr/bin/env bash
# GPU tests, the per-op profile and the speed figures with the PyTorch anchor in the same call.
# Logs to $OUT. Needs .carry/stb and .carry/bench carried. TORCH=0 skips the anchor.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
make -j16 CUDA_ARCH=sm_90 STB_INCLUDE="$PWD/.carry" all > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
if [ "${TESTS:-1}" = 1 ]; then ./build/tests/test-cuda ${QUICK:---quick} > "$OUT/test-cuda.log" 2>&1; grep -v "^ok" "$OUT/test-cuda.log" | tail -8; fi
if [ "${PROFILE:-1}" = 1 ]; then bash notes/device-profile.sh > "$OUT/profile.txt" 2>&1; cat "$OUT/profile.txt" | cut -c1-150; fi
for prec in 1 0; do
  ./examples/bench mvit --model mvit-b --batch 16 --device cuda --precision $([ $prec = 1 ] && echo tf32 || echo fp32) --reps 5 > "$OUT/bench-train-$prec.log" 2>&1; tail -1 "$OUT/bench-train-$prec.log"
  ./examples/bench mvit --model mvit-b --batch 56 --fwd-only --device cuda --precision $([ $prec = 1 ] && echo tf32 || echo fp32) --reps 5 > "$OUT/bench-fwd-$prec.log" 2>&1; tail -1 "$OUT/bench-fwd-$prec.log"
done
if [ "${TORCH:-1}" = 1 ]; then PYTHONUNBUFFERED=1 timeout 300 python3 .carry/bench/torch_anchor.py --quick > "$OUT/torch_anchor.log" 2>&1; tail -12 "$OUT/torch_anchor.log"; fi
