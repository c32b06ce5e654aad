#!/usr/bin/env bash
# The default model shipped until session 5 (models/scvrl-tiny-synth.safetensors; since replaced by
# the study's best model, docs/RESULTS.md), made in one device call:
# the synthetic motion set at the demo's settings (64 px, 24 frames, hard 1) as JPEG folders,
# SCVRL pretraining of mvit-tiny (8 frames, stride 2) on the GPU, then the online encoder
# exported as a float16 backbone with its config. Logs and the model go to $OUT.
# Usage (repository root, CUDA build present): bash notes/device-model.sh [STEPS] [SECONDS]
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
STEPS=${1:-4000}; LIMIT=${2:-330}
./examples/synth --out /tmp/syn --size 64 --frames 24 --hard 1 --per-class 10 --pretrain 1000 --splits val --format jpg --seed 11 --quiet
timeout -s INT "$LIMIT" ./examples/pretrain --device cuda --data /tmp/syn/pretrain.csv --val /tmp/syn/val.csv --model mvit-tiny \
  --frames 8 --stride 2 --size 64 --batch 32 --queue 256 --momentum 0.99 --lr 5e-4 --crop-min 0.5 --steps "$STEPS" \
  --save-every 500 --seed 1 --quiet --out /tmp/model > "$OUT/model.json" 2> "$OUT/model.log"
grep "^step" "$OUT/model.log" | awk 'NR % 10 == 0' | tail -8; cat "$OUT/model.json"
cp /tmp/model/metrics.jsonl /tmp/model/loss.png /tmp/model/command.txt "$OUT/" 2>/dev/null
ck=$(ls /tmp/model/ckpt-*.safetensors | tail -1)
./examples/embed --model mvit-tiny --frames 8 --stride 2 --size 64 --weights "$ck" --save-backbone "$OUT/scvrl-tiny-synth.safetensors" --save-dtype f16
