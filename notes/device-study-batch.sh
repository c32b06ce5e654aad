#!/usr/bin/env bash
# Several runs of the study (notes/device-study112.sh) in one device call, side by side on the one GPU, and
# everything but the models packed into $OUT/all.tgz (the device tool returns at most 8 files).
#
#   bash notes/device-study-batch.sh pretrain "scvrl-s1:--objective scvrl --seed 1" "cvrl-s1:--objective cvrl --seed 1"
#   bash notes/device-study-batch.sh eval scvrl-s1 cvrl-s1 random shipped     # probes on val and test, 4 at a time
#   GRID="scvrl-s1 cvrl-s1" bash notes/device-study-batch.sh eval ...          # also retrieval grids of one test query
#
# pretrain: each run's online encoder comes back as $OUT/NAME.safetensors (copy into .carry/models/ for eval).
set -uo pipefail
# The recorded runs (docs/RESULTS.md, notes/) used TF32, the programs' default before session 7 (now bf16).
export SCVRL_CUDA_PRECISION=${SCVRL_CUDA_PRECISION:-tf32}
OUT=${OUT:-/tmp/out}; export OUT; mkdir -p "$OUT"
MODE=${1:?pretrain or eval}; shift
DATA=${DATA:-/tmp/syn112h0}
t0=$(date +%s)
DATA_ONLY=1 bash notes/device-study112.sh || exit 1
echo "== data and build: $(( $(date +%s) - t0 )) s"
n=$#; [ "$n" -gt 0 ] || exit 2
if [ "$MODE" = pretrain ]; then
  TH=$(( 16 / n )); [ "$TH" -lt 2 ] && TH=2
  for r in "$@"; do
    RUN=${r%%:*} FLAGS="${r#*:}" EXPORT=1 NOEVAL=1 THREADS=$TH bash notes/device-study112.sh > "$OUT/${r%%:*}.out" 2>&1 &
  done
  wait
else
  SPLITS=${SPLITS:-val test}; export SPLITS
  i=0
  for r in "$@"; do
    RUN=$r THREADS=4 bash notes/device-study112.sh > "$OUT/$r.out" 2>&1 &
    i=$((i + 1)); [ $((i % 4)) -eq 0 ] && wait
  done
  wait
  Q=$(awk '$2 == 0 {print $1; exit}' "$DATA/test_motion.csv")
  for r in ${GRID:-}; do
    ./examples/retrieve "$DATA/$Q" --index "$DATA/train_motion.csv" --k 8 --grid "$OUT/grid-$r.png" \
      --weights "$(ls .carry/models/$r.safetensors /tmp/runs/$r/ckpt-*.safetensors 2>/dev/null | head -1)" --device cuda --quiet > "$OUT/grid-$r.txt" 2>&1
    echo "== retrieve $r (query $Q, class 0 left)"; cat "$OUT/grid-$r.txt"
  done
fi
for f in "$OUT"/*.out; do cat "$f"; done
echo "== total: $(( $(date +%s) - t0 )) s"
cd "$OUT" && tar czf /tmp/all.tgz --exclude='*.safetensors' --exclude='*part-*' --exclude='grid-*.png' . \
  && find . -mindepth 1 -not -name '*.safetensors' -not -name '*part-*' -not -name 'grid-*.png' -delete && mv /tmp/all.tgz .
ls -la "$OUT"
