#!/usr/bin/env bash
# Prepare what the GPU check (bench/gpu_check.sh) needs and a bare GPU machine cannot make (it has
# no mediapipe, so it can neither track nor enroll): tracked driver clips and three profiles, in
# the ignored folder .gpu-check/ that travels to the GPU machine with the working tree.
#
#   bench/gpu_prep.sh            (make gpu-prep)   needs ../shared/eval (or EVAL=...) and mediapipe
#
#   .gpu-check/clips/    d10, d14, d19: the mp4 (measurement only, never committed) + .track.npz
#   .gpu-check/profiles/ s1 (photo: warp tier), v18 (video s18.mp4: atlas tier),
#                        n18 (s18.mp4 frames 0-59, neural tier at 512², trained for a few steps
#                        on this CPU: its weights are meaningless, its cost on a GPU is not)
#
# Idempotent: what exists is kept (FORCE=1 remakes everything). Prints what will travel.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PUPPETEER_PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
EVAL=${EVAL:-../shared/eval}
[ -d "$EVAL/drivers" ] || EVAL=/work/shared/eval
DIR=.gpu-check
NEURAL_RES=${NEURAL_RES:-512}
NEURAL_STEPS=${NEURAL_STEPS:-2}
[ "${FORCE:-0}" = 1 ] && rm -rf "$DIR"
mkdir -p "$DIR/clips" "$DIR/profiles"
export PUPPETEER_PROFILES="$PWD/$DIR/profiles"

for d in d10 d14 d19; do
  [ -f "$DIR/clips/$d.mp4" ] || cp "$EVAL/drivers/$d.mp4" "$DIR/clips/$d.mp4"
  [ -f "$DIR/clips/$d.track.npz" ] || "$PY" run.py track "$DIR/clips/$d.mp4" --out "$DIR/clips/$d.track.npz"
done
[ -f "$DIR/profiles/s1/profile.yaml" ] || "$PY" run.py enroll "$EVAL/targets/s1.jpg" --name s1 \
    --consent "evaluation portrait from ../shared/eval (see its README), benchmark use only"
[ -f "$DIR/profiles/v18/profile.yaml" ] || "$PY" run.py enroll "$EVAL/targets/s18.mp4" --name v18
if [ ! -f "$DIR/profiles/n18/neural/generator.safetensors" ]; then
  "$PY" run.py enroll "$EVAL/targets/s18.mp4" --name n18 --frames 0:60 --force
  "$PY" run.py train --profile n18 --video "$EVAL/targets/s18.mp4" --steps "$NEURAL_STEPS" \
      --resolution "$NEURAL_RES" --batch 1
  # The trainer's resumable state (optimiser moments, discriminator) is not needed to run the
  # generator and is the largest file: drop it from the copy that travels.
  "$PY" -m bench.gpu_check slim "$DIR/profiles/n18"
fi
"$PY" -m bench.gpu_check travel --carry "$DIR"
