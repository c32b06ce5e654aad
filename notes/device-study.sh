#!/usr/bin/env bash
# GPU check of the temporal objective on synthetic data: several pretraining variants in one
# device call (logs under $OUT). Usage: bash notes/device-study.sh "FLAGS1" "FLAGS2" ...
set -uo pipefail
# The recorded runs (docs/RESULTS.md, notes/) used TF32, the programs' default before session 7 (now bf16).
export SCVRL_CUDA_PRECISION=${SCVRL_CUDA_PRECISION:-tf32}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
make -j16 CUDA_ARCH=sm_90 STB_INCLUDE="$PWD/.carry" examples/pretrain examples/synth > "$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
./examples/synth --out /tmp/syn --size 64 --frames 24 --per-class 10 --pretrain 1000 --splits val --format jpg --quiet
i=0
for flags in "$@"; do
  i=$((i + 1))
  timeout ${EACH_S:-100} ./examples/pretrain --device cuda --data /tmp/syn/pretrain.csv --val /tmp/syn/val.csv --model mvit-tiny \
    --frames 8 --stride 2 --size 64 --batch 32 --queue 256 --save-every 100000 --quiet --out /tmp/run$i $flags \
    > "$OUT/v$i.json" 2> "$OUT/v$i.log"
  echo "== v$i: $flags"; grep "^step" "$OUT/v$i.log" | awk 'NR % 30 == 0'; cat "$OUT/v$i.json"
done
