#!/usr/bin/env bash
# The validity gates of the synthetic benchmark (../shared SYNTH.md section 7) on a GPU machine, at the
# GPU study's sizes (SYNTH.md section 9: 112 px, 48-frame videos / 32-frame window, clips 16 x 2,
# 100 videos per class in train and val, JPEG q95 folders). Logs and JSON lines go under $OUT; see
# notes/gates.md for the pass bars and the CPU numbers.
#
#   bash notes/device-gates.sh            # all gates
#   GATES="g3 g4flow g5" bash notes/device-gates.sh   # the cheap ones (CPU work, minutes)
#
# appsup (not a SYNTH.md gate, a diagnostic): the supervised recipe on the appearance labels (is the label learnable?).
# Defaults: the settings whose gates pass (notes/gates.md, session 4): hard 0, mvit-tiny, 80 epochs without regularisation.
# Knobs: PER_CLASS (100), EPOCHS (80, supervised runs), LR (1e-3), EXTRA (eval finetune flags; default: no label smoothing,
# drop-path or head dropout, crops from 50%), QUIET= (show epochs), MODEL (mvit-tiny), SIZE (96: the crop the model
# sees, a multiple of 32, from the 112-px frames), EACH_S (timeout per
# supervised run, 540 s: the device tool allows 600 s a command, so run one supervised gate per call:
# GATES=g1, GATES=g2, GATES=g4sup: 80 epochs take ~4 min each), THREADS (16), HARD (0: examples/synth --hard; one data folder per level),
# BINS (8: eval flow --bins, time bins of the oracle's features).
set -uo pipefail
# The recorded runs (docs/RESULTS.md, notes/) used TF32, the programs' default before session 7 (now bf16).
export SCVRL_CUDA_PRECISION=${SCVRL_CUDA_PRECISION:-tf32}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
GATES=${GATES:-"g3 g4flow g5 g4sup g1 g2"}
PER_CLASS=${PER_CLASS:-100}; EPOCHS=${EPOCHS:-80}; MODEL=${MODEL:-mvit-tiny}; EACH_S=${EACH_S:-540}; THREADS=${THREADS:-16}
HARD=${HARD:-0}; BINS=${BINS:-8}
DATA=${DATA:-/tmp/syn112h$HARD}

# build: no FFmpeg on the GPU machines; stb from the carried folder (either layout)
STB=""
for d in "$PWD/.carry" "$PWD/.carry/stb"; do [ -f "$d/stb/stb_image.h" ] && STB="$d"; done
make -j16 CUDA_ARCH=sm_90 FFMPEG=0 ${STB:+STB_INCLUDE=$STB} examples/synth examples/eval > "$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }

# data: generated on the machine itself (about 1 GB of JPEG folders), once per machine
if [ ! -f "$DATA/val_motion.csv" ]; then
  ./examples/synth --out "$DATA" --size 112 --frames 48 --per-class "$PER_CLASS" --splits train,val --pretrain 0 \
    --hard "$HARD" --format jpg --threads "$THREADS" --quiet 2> "$OUT/synth.log" || { cat "$OUT/synth.log"; exit 1; }
fi
TRM="$DATA/train_motion.csv"; VAM="$DATA/val_motion.csv"
TRA="$DATA/train_appearance.csv"; VAA="$DATA/val_appearance.csv"
L2="1e-4,1e-3,1e-2,1e-1,1,10"
SUP="--model $MODEL --frames 16 --stride 2 --size ${SIZE:-96} --device cuda --batch 32 --epochs $EPOCHS --lr ${LR:-1e-3} --threads $THREADS ${QUIET---quiet} ${EXTRA---label-smoothing 0 --drop-path 0 --head-dropout 0 --min-scale 0.5}"

for g in $GATES; do
  case $g in
  g3)     ./examples/eval flow --train "$TRA" --val "$VAA" --cache "$DATA/flow" --bins "$BINS" --l2 $L2 --threads "$THREADS" --quiet > "$OUT/g3.txt" 2>&1 ;;
  g4flow) ./examples/eval flow --train "$TRM" --val "$VAM" --cache "$DATA/flow" --bins "$BINS" --l2 $L2 --threads "$THREADS" --quiet > "$OUT/g4flow.txt" 2>&1 ;;
  g5)     ./examples/eval linear --model "$MODEL" --frames 16 --stride 2 --size ${SIZE:-96} --device cuda --train "$TRM" --val "$VAM" \
            --cache "$DATA/feat" --threads "$THREADS" --quiet > "$OUT/g5.txt" 2>&1 ;;
  g4sup)  timeout "$EACH_S" ./examples/eval finetune $SUP --clips ordered  --train "$TRM" --val "$VAM" > "$OUT/g4sup.txt" 2>&1 ;;
  g1)     timeout "$EACH_S" ./examples/eval finetune $SUP --clips static   --train "$TRM" --val "$VAM" > "$OUT/g1.txt" 2>&1 ;;
  g2)     timeout "$EACH_S" ./examples/eval finetune $SUP --clips shuffled --train "$TRM" --val "$VAM" > "$OUT/g2.txt" 2>&1 ;;
  appsup) timeout "$EACH_S" ./examples/eval finetune $SUP --clips ordered  --train "$TRA" --val "$VAA" > "$OUT/appsup.txt" 2>&1 ;;
  *) echo "unknown gate $g (g1 g2 g3 g4flow g4sup g5 appsup)"; exit 2 ;;
  esac
  echo "== $g (rc $?)"; grep -E "top-1|pair acc|^  [a-z_]+ / " "$OUT/$g.txt" | head -14; tail -1 "$OUT/$g.txt"
done
