#!/usr/bin/env bash
# The study of issue #8 on a GPU machine (../shared SYNTH.md sections 7-9): pretraining runs, then their probes.
#
#   RUN=scvrl-s1 FLAGS="--objective scvrl --seed 1" EXPORT=1 NOEVAL=1 bash notes/device-study112.sh   # pretrain, export
#   RUN=scvrl-s1 SPLITS="val test" bash notes/device-study112.sh      # probes of .carry/models/scvrl-s1.safetensors
#   RUN=random SPLITS="val test" bash notes/device-study112.sh        # random init: probes only
#   RUN=shipped SPLITS="val test" bash notes/device-study112.sh       # the shipped models/scvrl-tiny-synth.safetensors
#
# Data: the GPU study set (112 px, 48-frame videos, hard 0: the level whose gates pass, notes/gates.md), 4,000
# unlabelled pretraining videos, 1,800 per class-balanced split, JPEG q95, made on the machine (~60 s).
# A pretraining run resumes on the same machine (pretrain --resume from /tmp/runs/$RUN, or from .carry/runs/$RUN
# when carried). Checkpoints (45 MB for mvit-tiny) are over the device tool's 16 MiB a file, so a run is made in
# one call: with EXPORT=1 its finished online encoder comes back as $OUT/$RUN.safetensors (float32 backbone with
# its config, 5.6 MB; put it in .carry/models/ to probe it in a later call); an unfinished one comes back as
# 15 MiB pieces $OUT/$RUN-ckpt.part-* (cat them into .carry/runs/$RUN/ to resume). metrics.jsonl, command.txt and
# loss.png come back under $OUT/$RUN. NOEVAL=1 skips the probes. Several runs may share one GPU (different RUN
# names), once the data exist (make them first, e.g. with DATA_ONLY=1).
# Probes (SPLITS, default val): linear motion top-1 and pair accuracy, eval shuffle's drop, kNN, linear appearance;
# centre clip, no flip; weights from .carry/models/$RUN.safetensors, else /tmp/runs/$RUN's last checkpoint.
# Knobs: STEPS (3000), EACH_S (timeout of the pretraining part, 480 s; on it pretrain saves and stops), THREADS (16),
# COMMON (the shared recipe, below: the study's declared recipe, notes/study.md section 4).
set -uo pipefail
# The recorded runs (docs/RESULTS.md, notes/) used TF32, the programs' default before session 7 (now bf16).
export SCVRL_CUDA_PRECISION=${SCVRL_CUDA_PRECISION:-tf32}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
RUN=${RUN:-}; STEPS=${STEPS:-3000}; EACH_S=${EACH_S:-480}; THREADS=${THREADS:-16}; SPLITS=${SPLITS:-val}
DATA=${DATA:-/tmp/syn112h0}
COMMON=${COMMON:-"--model mvit-tiny --frames 16 --stride 2 --size 96 --batch 32 --queue 1024 --momentum 0.9 --lambda 0.5 \
  --lr 5e-4 --crop-min 0.8 --color-jitter 0 --gray 0 --blur 0 --flip 0.5 --beta inf --nt 12 --save-every 250 --keep 1"}

STB=""
for d in "$PWD/.carry" "$PWD/.carry/stb"; do [ -f "$d/stb/stb_image.h" ] && STB="$d"; done
if [ ! -x examples/retrieve ] || [ -n "${DATA_ONLY:-}" ]; then
  make -j16 CUDA_ARCH=sm_90 FFMPEG=0 ${STB:+STB_INCLUDE=$STB} examples/synth examples/eval examples/pretrain examples/embed \
    examples/retrieve > "$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
fi
if [ ! -f "$DATA/test_motion.csv" ] || [ ! -f "$DATA/pretrain.csv" ]; then
  ./examples/synth --out "$DATA" --size 112 --frames 48 --per-class 100 --splits train,val,test --pretrain 4000 --hard 0 \
    --format jpg --threads "$THREADS" --quiet 2> "$OUT/synth.log" || { cat "$OUT/synth.log"; exit 1; }
fi
[ -n "${DATA_ONLY:-}" ] && exit 0
[ -n "$RUN" ] || { echo "RUN=name is needed"; exit 2; }

R=/tmp/runs/$RUN
finished() { [ -n "$(ls "$R"/ckpt-*"$(printf %08d "$STEPS")".safetensors 2>/dev/null)" ]; }
if [ -n "${FLAGS:-}" ] && [ ! -f ".carry/models/$RUN.safetensors" ]; then   # FLAGS given: pretrain (or resume)
  mkdir -p /tmp/runs
  [ -d ".carry/runs/$RUN" ] && [ ! -d "$R" ] && cp -r ".carry/runs/$RUN" "$R"
  WHAT="--out $R $COMMON ${FLAGS:-}"   # resuming needs the same flags (pretrain compares the configuration)
  ls "$R"/ckpt-*.safetensors > /dev/null 2>&1 && WHAT="--resume $R $WHAT"
  t0=$(date +%s)
  timeout "$EACH_S" ./examples/pretrain --device cuda --data "$DATA/pretrain.csv" --val "$DATA/val_motion.csv" \
    --steps "$STEPS" --threads "$THREADS" --quiet $WHAT > "$OUT/$RUN.json" 2> "$OUT/$RUN.log"
  echo "== pretrain $RUN (rc $?, $(( $(date +%s) - t0 )) s): $WHAT"
  grep "^step" "$OUT/$RUN.log" | awk 'NR % 10 == 0' | tail -4; tail -2 "$OUT/$RUN.log"
  mkdir -p "$OUT/$RUN"; cp "$R"/metrics.jsonl "$R"/command.txt "$R"/loss.png "$OUT/$RUN/" 2>/dev/null
  CK=$(ls "$R"/ckpt-*.safetensors 2>/dev/null | tail -1)
  if [ -n "${EXPORT:-}" ] && finished; then
    KT=$(echo "${FLAGS:-}" | grep -o -- '--kt [23]' | awk '{print $2}')
    ./examples/embed --model mvit-tiny --frames 16 --stride 2 --size 96 --kt "${KT:-2}" --weights "$CK" \
      --save-backbone "$OUT/$RUN.safetensors" --quiet > "$OUT/$RUN-export.log" 2>&1 || cat "$OUT/$RUN-export.log"
  elif [ -n "${EXPORT:-}" ] && [ -n "$CK" ]; then
    split -b 15m "$CK" "$OUT/$RUN-ckpt.part-"; echo "== $RUN unfinished: $(basename "$CK") in pieces"
  fi
fi

[ -n "${NOEVAL:-}" ] && exit 0
# probes: motion (top-1, pair accuracy, shuffle drop, kNN) and appearance (top-1), centre clip, no flip
if [ "$RUN" = random ]; then W="--model mvit-tiny --frames 16 --stride 2 --size 96"
elif [ "$RUN" = shipped ]; then W="--weights models/scvrl-tiny-synth.safetensors"
elif [ -f ".carry/models/$RUN.safetensors" ]; then W="--weights .carry/models/$RUN.safetensors"
else finished || { echo "== $RUN: not finished, no eval"; exit 0; }; W="--weights $(ls "$R"/ckpt-*.safetensors | tail -1)"
fi
E="--device cuda --threads $THREADS --quiet --cache /tmp/feat-$RUN"
TR=$DATA/train
for SPLIT in $SPLITS; do
  VA=$DATA/$SPLIT
  ./examples/eval linear  $W $E --train ${TR}_motion.csv --val ${VA}_motion.csv > "$OUT/$RUN-$SPLIT-linear.txt" 2>&1
  ./examples/eval shuffle $W $E --train ${TR}_motion.csv --val ${VA}_motion.csv > "$OUT/$RUN-$SPLIT-shuffle.txt" 2>&1
  ./examples/eval knn     $W $E --train ${TR}_motion.csv --val ${VA}_motion.csv > "$OUT/$RUN-$SPLIT-knn.txt" 2>&1
  ./examples/eval linear  $W $E --train ${TR}_appearance.csv --val ${VA}_appearance.csv > "$OUT/$RUN-$SPLIT-app.txt" 2>&1
  for k in linear shuffle knn app; do echo "== $RUN $SPLIT $k"; grep -E "top-1|drop|pair acc" "$OUT/$RUN-$SPLIT-$k.txt" | head -4; done
done
