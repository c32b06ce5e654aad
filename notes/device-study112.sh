#!/usr/bin/env bash
# The study of issue #8 on a GPU machine (../shared SYNTH.md sections 7-9): one pretraining run per call,
# resumable across calls and machines, then its probes on val (and, with SPLIT=test, on test).
#
#   RUN=scvrl1 FLAGS="--objective scvrl --seed 1" bash notes/device-study112.sh   # pretrain (or resume) + eval
#   RUN=random bash notes/device-study112.sh                                      # random init: eval only
#   RUN=scvrl1 EVAL_ONLY=1 SPLIT=test bash notes/device-study112.sh               # the test split, once, at the end
#
# Data: the GPU study set (112 px, 48-frame videos, hard 0: the level whose gates pass, notes/gates.md), 4,000
# unlabelled pretraining videos, 1,800 per class-balanced split, JPEG q95, made on the machine (~70 s).
# Resuming: on the same machine a second call continues the run bit for bit (pretrain --resume, from
# /tmp/runs/$RUN, or from .carry/runs/$RUN when carried). Checkpoints (45 MB for mvit-tiny) are over the
# device tool's 16 MiB a file, so only metrics.jsonl, command.txt and loss.png come back under $OUT/$RUN.
# NOEVAL=1 skips the probes (recipe exploration). Several runs may share one GPU (different RUN names),
# once the data exist (make them first, e.g. with RUN=random).
# Knobs: STEPS (1500), EACH_S (timeout of the pretraining part, 420 s; on it pretrain saves and stops), THREADS (16), COMMON (the shared recipe).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
RUN=${RUN:?RUN=name}; STEPS=${STEPS:-1500}; EACH_S=${EACH_S:-420}; THREADS=${THREADS:-16}; SPLIT=${SPLIT:-val}
DATA=${DATA:-/tmp/syn112h0}
COMMON=${COMMON:-"--model mvit-tiny --frames 16 --stride 2 --size 96 --batch 32 --queue 1024 --momentum 0.99 --lr 5e-4 \
  --crop-min 0.5 --beta inf --nt 12 --save-every 250 --keep 1"}

STB=""
for d in "$PWD/.carry" "$PWD/.carry/stb"; do [ -f "$d/stb/stb_image.h" ] && STB="$d"; done
make -j16 CUDA_ARCH=sm_90 FFMPEG=0 ${STB:+STB_INCLUDE=$STB} examples/synth examples/eval examples/pretrain > "$OUT/build.log" 2>&1 \
  || { tail -20 "$OUT/build.log"; exit 1; }
if [ ! -f "$DATA/test_motion.csv" ] || [ ! -f "$DATA/pretrain.csv" ]; then
  ./examples/synth --out "$DATA" --size 112 --frames 48 --per-class 100 --splits train,val,test --pretrain 4000 --hard 0 \
    --format jpg --threads "$THREADS" --quiet 2> "$OUT/synth.log" || { cat "$OUT/synth.log"; exit 1; }
fi

R=/tmp/runs/$RUN
if [ "$RUN" != random ] && [ -z "${EVAL_ONLY:-}" ]; then
  mkdir -p /tmp/runs
  [ -d ".carry/runs/$RUN" ] && [ ! -d "$R" ] && cp -r ".carry/runs/$RUN" "$R"
  WHAT="--out $R $COMMON ${FLAGS:-}"   # resuming needs the same flags (pretrain compares the configuration)
  ls "$R"/ckpt-*.safetensors > /dev/null 2>&1 && WHAT="--resume $R $WHAT"
  timeout "$EACH_S" ./examples/pretrain --device cuda --data "$DATA/pretrain.csv" --steps "$STEPS" --threads "$THREADS" --quiet $WHAT \
    > "$OUT/$RUN.json" 2> "$OUT/$RUN.log"
  echo "== pretrain $RUN (rc $?): $WHAT"; grep "^step" "$OUT/$RUN.log" | awk 'NR % 10 == 0' | tail -8; tail -3 "$OUT/$RUN.log"
  mkdir -p "$OUT/$RUN"; cp "$R"/metrics.jsonl "$R"/command.txt "$R"/loss.png "$OUT/$RUN/" 2>/dev/null
fi

[ -n "${NOEVAL:-}" ] && exit 0
# probes: motion (top-1, pair accuracy, shuffle drop, kNN) and appearance (top-1), centre clip, no flip
if [ "$RUN" = random ]; then W="--model mvit-tiny --frames 16 --stride 2 --size 96"
else
  [ -d "$R" ] || { mkdir -p /tmp/runs; cp -r ".carry/runs/$RUN" "$R"; }
  CK=$(ls "$R"/ckpt-*.safetensors | tail -1)
  [ -n "$(ls "$R"/ckpt-*"$(printf %08d "$STEPS")".safetensors 2>/dev/null)" ] \
    || { echo "== $RUN: not finished ($CK), no eval"; exit 0; }
  W="--weights $CK"
fi
E="--device cuda --threads $THREADS --quiet --cache /tmp/feat-$RUN"
TR=$DATA/train; VA=$DATA/$SPLIT
./examples/eval linear  $W $E --train ${TR}_motion.csv --val ${VA}_motion.csv > "$OUT/$RUN-$SPLIT-linear.txt" 2>&1
./examples/eval shuffle $W $E --train ${TR}_motion.csv --val ${VA}_motion.csv > "$OUT/$RUN-$SPLIT-shuffle.txt" 2>&1
./examples/eval knn     $W $E --train ${TR}_motion.csv --val ${VA}_motion.csv > "$OUT/$RUN-$SPLIT-knn.txt" 2>&1
./examples/eval linear  $W $E --train ${TR}_appearance.csv --val ${VA}_appearance.csv > "$OUT/$RUN-$SPLIT-app.txt" 2>&1
for k in linear shuffle knn app; do echo "== $RUN $SPLIT $k"; grep -E "top-1|drop|pair acc" "$OUT/$RUN-$SPLIT-$k.txt" | head -4; done
