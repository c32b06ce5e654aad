#!/usr/bin/env bash
# One device call: GPU tests, a short GPU pretraining run with a resume, and the three speed
# figures of issue #7 (MViT-B train step B16, forward B56, SCVRL step B8; TF32 and fp32) next to
# PyTorch's full anchor (bf16 and tf32) on the same card. Logs to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name --format=csv,noheader
make -j16 CUDA_ARCH=sm_90 STB_INCLUDE="$PWD/.carry" all > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
./build/tests/test-cuda > "$OUT/test-cuda.log" 2>&1; tail -1 "$OUT/test-cuda.log"
./examples/synth --out /tmp/syn --size 64 --frames 24 --per-class 10 --pretrain 1000 --splits val --format jpg --quiet
P="./examples/pretrain --device cuda --data /tmp/syn/pretrain.csv --val /tmp/syn/val.csv --model mvit-tiny --frames 8 --stride 2 --size 64 --batch 32 --queue 256 --momentum 0.99 --lr 5e-4 --crop-min 0.5 --quiet --out /tmp/pt"
$P --steps 300 --save-every 150 > /tmp/pt1.json 2> /tmp/pt1.log; grep "^step 300\|^step 150\|held-out" /tmp/pt1.log; cat /tmp/pt1.json
$P --steps 320 --save-every 150 --resume /tmp/pt > /tmp/pt2.json 2> /tmp/pt2.log; grep "resumed\|^step 320" /tmp/pt2.log
{
for prec in 1 0; do
  SCVRL_CUDA_TF32=$prec ./examples/bench mvit --model mvit-b --batch 16 --device cuda --reps 5 2>/dev/null | tail -1
  SCVRL_CUDA_TF32=$prec ./examples/bench mvit --model mvit-b --batch 56 --fwd-only --device cuda --reps 5 2>/dev/null | tail -1
  SCVRL_CUDA_TF32=$prec ./examples/bench scvrl --model mvit-b --batch 8 --device cuda --reps 3 2>/dev/null | tail -1
done
} > "$OUT/ours.jsonl"
cat "$OUT/ours.jsonl" | grep -o '"bench":"[a-z]*"\|"batch":[0-9]*\|"precision":"[a-z0-9]*"\|"fwd_clips_per_s":[0-9.]*\|"train_clips_per_s":[0-9.]*\|"scvrl_samples_per_s":[0-9.]*\|"peak_gpu_mb":[0-9.]*' | paste -sd' ' | sed 's/"bench"/\n"bench"/g'
echo
PYTHONUNBUFFERED=1 timeout ${TORCH_S:-420} python3 .carry/bench/torch_anchor.py > "$OUT/torch_anchor.log" 2>&1; tail -25 "$OUT/torch_anchor.log"
