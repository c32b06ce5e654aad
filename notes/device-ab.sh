#!/usr/bin/env bash
# One device call: build, GPU tests (--quick), then A/B of an environment switch on the MViT-B
# benchmarks, alternating (A, B, A, B), with a per-op profile of each side. Usage:
#   AB_VAR=SCVRL_CUDA_CONV AB_A=old AB_B= bash notes/device-ab.sh      (logs to $OUT)
# PRECS (default tf32), TESTS=0 (skip the tests), SCVRL=0 (no SCVRL step), PROF_GREP (profile lines shown).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
make -j16 CUDA_ARCH=sm_90 STB_INCLUDE="$PWD/.carry" all > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
if [ "${TESTS:-1}" = 1 ]; then
  ./build/tests/test-cuda --quick > "$OUT/test-cuda.log" 2>&1; echo "test-cuda rc $?"
  grep -v "^ok" "$OUT/test-cuda.log" | tail -6; grep -c "^ok" "$OUT/test-cuda.log"
fi
V=${AB_VAR:-SCVRL_CUDA_CONV}
side() {  # value label args...
  local val=$1 lab=$2; shift 2
  if [ -n "$val" ]; then env "$V=$val" "$@"; else env -u "$V" "$@"; fi 2>/dev/null | tail -1 |
    grep -o '"precision":"[a-z0-9]*"\|"batch":[0-9]*\|"fwd_clips_per_s":[0-9.]*\|"train_clips_per_s":[0-9.]*\|"scvrl_samples_per_s":[0-9.]*\|"max_rel_err":[^,]*' |
    paste -sd' ' | sed "s/^/$lab: /"
}
for prec in ${PRECS:-tf32}; do
  for rep in 1 2; do
    for s in A B; do
      val=$([ $s = A ] && echo "${AB_A-old}" || echo "${AB_B-}")
      side "$val" "$s($V=$val) fwd" ./examples/bench mvit --model mvit-b --batch 56 --fwd-only --device cuda --precision $prec --reps 5
      side "$val" "$s($V=$val) train" ./examples/bench mvit --model mvit-b --batch 16 --device cuda --precision $prec --reps 5
    done
  done
  [ "${SCVRL:-1}" = 1 ] && for s in A B; do
    val=$([ $s = A ] && echo "${AB_A-old}" || echo "${AB_B-}")
    side "$val" "$s($V=$val) scvrl" ./examples/bench scvrl --model mvit-b --batch 8 --device cuda --precision $prec --reps 3
  done
done | tee "$OUT/ab.txt"
for s in A B; do
  val=$([ $s = A ] && echo "${AB_A-old}" || echo "${AB_B-}")
  if [ -n "$val" ]; then E="$V=$val"; else E="SCVRL_AB_NONE=1"; fi
  env $E SCVRL_PROFILE=1 ./examples/bench mvit --model mvit-b --batch 16 --device cuda --precision $(echo ${PRECS:-tf32} | cut -d" " -f1) --reps 3 --warmup 1 > "$OUT/prof-$s.log" 2>&1
  env $E SCVRL_PROFILE=1 ./examples/bench mvit --model mvit-b --batch 56 --fwd-only --device cuda --precision $(echo ${PRECS:-tf32} | cut -d" " -f1) --reps 3 --warmup 1 > "$OUT/proff-$s.log" 2>&1
  echo "== profile $s ($E), train B16"; sed -n '/scvrl profile/,/slowest/p' "$OUT/prof-$s.log" | grep -E "${PROF_GREP:-CONV3D|CONT}"
  echo "== profile $s ($E), forward B56"; sed -n '/scvrl profile/,/slowest/p' "$OUT/proff-$s.log" | grep -E "${PROF_GREP:-CONV3D|CONT}"
done
