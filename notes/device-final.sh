#!/usr/bin/env bash
# One device call: GPU tests, a short GPU pretraining run with a resume, and the three speed
# figures of issue #7 (MViT-B train step B16, forward B56, SCVRL step B8) at each precision of
# PRECS (default "bf16 tf32") next to PyTorch's anchor on the same card (TORCH=quick: bf16 only;
# TORCH=full: bf16 and tf32; TORCH=0: none). Logs to $OUT. Needs .carry/stb and .carry/bench.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
make -j16 CUDA_ARCH=sm_90 STB_INCLUDE="$PWD/.carry" all > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
if [ "${TESTS:-1}" = 1 ]; then ./build/tests/test-cuda ${QUICK:-} > "$OUT/test-cuda.log" 2>&1; grep -v "^ok" "$OUT/test-cuda.log" | tail -8; grep "bf16\|pretrain" "$OUT/test-cuda.log" | cut -c1-300; fi
if [ "${PRETRAIN:-0}" = 1 ]; then
  ./examples/synth --out /tmp/syn --size 64 --frames 24 --per-class 10 --pretrain 1000 --splits val --format jpg --quiet
  P="./examples/pretrain --device cuda --data /tmp/syn/pretrain.csv --val /tmp/syn/val.csv --model mvit-tiny --frames 8 --stride 2 --size 64 --batch 32 --queue 256 --momentum 0.99 --lr 5e-4 --crop-min 0.5 --quiet --out /tmp/pt"
  $P --steps 300 --save-every 150 > /tmp/pt1.json 2> /tmp/pt1.log; grep "^step 300\|^step 150\|held-out" /tmp/pt1.log; cat /tmp/pt1.json
  $P --steps 320 --save-every 150 --resume /tmp/pt > /tmp/pt2.json 2> /tmp/pt2.log; grep "resumed\|^step 320" /tmp/pt2.log
fi
for prec in ${PRECS:-bf16 tf32}; do
  ./examples/bench mvit --model mvit-b --batch 16 --device cuda --precision $prec --reps 5 2>/dev/null | tail -1
  ./examples/bench mvit --model mvit-b --batch 56 --fwd-only --device cuda --precision $prec --reps 5 2>/dev/null | tail -1
  ./examples/bench scvrl --model mvit-b --batch 8 --device cuda --precision $prec --reps 3 2>/dev/null | tail -1
done | tee "$OUT/ours.jsonl" | grep -o '"bench":"[a-z]*"\|"batch":[0-9]*\|"precision":"[a-z0-9]*"\|"fwd_clips_per_s":[0-9.]*\|"train_clips_per_s":[0-9.]*\|"scvrl_samples_per_s":[0-9.]*\|"peak_gpu_mb":[0-9.]*\|"max_rel_err":[^,]*' | paste -sd' ' | sed 's/"bench"/\n"bench"/g'
echo
case "${TORCH:-quick}" in
  quick) PYTHONUNBUFFERED=1 timeout ${TORCH_S:-300} python3 .carry/bench/torch_anchor.py --quick > "$OUT/torch_anchor.log" 2>&1; tail -8 "$OUT/torch_anchor.log" ;;
  full) PYTHONUNBUFFERED=1 timeout ${TORCH_S:-420} python3 .carry/bench/torch_anchor.py > "$OUT/torch_anchor.log" 2>&1; tail -25 "$OUT/torch_anchor.log" ;;
esac
