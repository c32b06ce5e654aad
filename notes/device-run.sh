#!/usr/bin/env bash
# One device-machine call: build with CUDA, run the GPU tests, a GPU pretraining check on
# synthetic data (JPEG folders: the GPU machine has no FFmpeg), and the speed benchmarks with the
# PyTorch anchor in the same call. Logs go to $OUT. Needs .carry/stb (stb headers) and
# .carry/bench (../shared/bench) carried.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
make -j16 CUDA_ARCH=sm_90 STB_INCLUDE="$PWD/.carry" all > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
./build/tests/test-cuda --quick > "$OUT/test-cuda.log" 2>&1; tail -2 "$OUT/test-cuda.log"
if [ "${STUDY:-1}" = 1 ]; then
  ./examples/synth --out /tmp/syn --size 64 --frames 24 --per-class 10 --pretrain 1000 --splits val --format jpg --quiet
  timeout ${STUDY_S:-300} ./examples/pretrain --device cuda --data /tmp/syn/pretrain.csv --val /tmp/syn/val.csv --model mvit-tiny \
    --frames 8 --stride 2 --size 64 --batch 32 --queue 256 --momentum 0.99 --lr 5e-4 --steps ${STUDY_STEPS:-1500} \
    --save-every 100000 --quiet --out "$OUT/study" > "$OUT/study.json" 2> "$OUT/study.log"
  grep "^step" "$OUT/study.log" | awk 'NR % 5 == 0' | tail -12; cat "$OUT/study.json"
fi
if [ "${BENCH:-1}" = 1 ]; then
  ./examples/bench mvit --model mvit-b --batch 16 --device cuda > "$OUT/bench-train.log" 2>&1; tail -3 "$OUT/bench-train.log"
  PYTHONUNBUFFERED=1 python3 .carry/bench/torch_anchor.py --quick > "$OUT/torch_anchor.log" 2>&1; tail -3 "$OUT/torch_anchor.log"
fi
