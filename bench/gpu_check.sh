#!/usr/bin/env bash
# The GPU check (issue 16; README "The GPU check"): everything the GPU path has to show, in one
# command, on a bare GPU machine (no install step: PYTHONPATH only; the tracked clips and the
# profiles come in the carried folder .gpu-check/, made here by `make gpu-prep`).
#
#   bash bench/gpu_check.sh [--rehearse] [STEP ...]     (make gpu-check; make gpu-rehearse)
#
# STEPs (default: all, in this order; each under its own time limit; ~5-6 min in all expected):
#   env      GPU, driver, package versions, run.py devices
#   pytest   every .cu through nvcc --ptx, then pytest -m cuda: kernel parity and goldens on cuda,
#            the device context, CUDA engine = CPU engine
#   kernels  per-kernel CUDA-event times (rasterize 256² ...) and the 512² FP16 generator
#   bench    bench on tracked d10, warp / atlas / neural tiers and the warp swap, --compare device=cpu,cuda
#            (neural: torch FP16 + CUDA graphs; --compare backend=torch,tensorrt when TensorRT is there)
#   streams  bench --streams on the GPU: neural 512² engines on d10/d14/d19, the largest N at 30 fps
#   live     offline throughput on the GPU per tier (every frame, as fast as it goes)
#   profile  (not in the default list) cProfile of the offline live loop on the GPU: warp, warp
#            swap, neural; top functions by own and by cumulative time, where a slow tier goes
#
# Results: JSON, plots and logs, tarred into $OUT/gpu-check.tar.gz after every step (a run cut
# short still returns what it finished), plus $OUT/summary.md and $OUT/check.log; without $OUT,
# .gpu-check/out/. Exit 0 when every step passed.
#
# --rehearse (this machine, no GPU): the same steps with the CUDA commands expected to stop with
# the one-line "needs an NVIDIA GPU" error (exit 2) and their CPU twins run for real on a few
# frames; `make gpu-rehearse` runs it from a copy of exactly what travels, under numpy 2 without
# mediapipe.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PUPPETEER_PY:-python3}
REHEARSE=0
if [ "${1:-}" = "--rehearse" ]; then REHEARSE=1; shift; fi
STEPS=${*:-env pytest kernels bench streams live}
OUTDIR=${OUT:-$PWD/.gpu-check/out}
mkdir -p "$OUTDIR"
WORK=$(mktemp -d)/gpu-check
mkdir -p "$WORK"
LOG=$OUTDIR/check.log
: > "$LOG"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PUPPETEER_PROFILES=$PWD/.gpu-check/profiles
export PYTHONUNBUFFERED=1 CI=true
C=.gpu-check/clips
DRIVER=$C/d10.track.npz
FAILED=()
if [ $REHEARSE = 1 ]; then DEV=cpu; FRAMES=60; else DEV=cuda; FRAMES=240; fi

say() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }
pack() {  # everything so far into one file: a handful of files is easy to bring back
  tar -czf "$OUTDIR/gpu-check.tar.gz.tmp" -C "$(dirname "$WORK")" gpu-check && \
    mv "$OUTDIR/gpu-check.tar.gz.tmp" "$OUTDIR/gpu-check.tar.gz"
}
# run NAME LIMIT_S CMD...: the command's output into $WORK/NAME.log; a failure is recorded
run() {
  local name=$1 limit=$2; shift 2
  say "$name: $*"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  say "$name: exit $rc in $((SECONDS - t0)) s"
  tail -n 4 "$WORK/$name.log" | sed 's/^/    /' | tee -a "$LOG"
  [ $rc = 0 ] || FAILED+=("$name")
  return $rc
}
# refused NAME CMD...: (rehearsal) a CUDA command must stop with the one-line GPU error, exit 2
refused() {
  local name=$1; shift
  "$@" > "$WORK/$name.refused.log" 2>&1
  local rc=$?
  if [ $rc = 2 ] && grep -q "^error: .*needs an NVIDIA GPU" "$WORK/$name.refused.log"; then
    say "$name: refused cleanly without a GPU (exit 2): $(grep '^error:' "$WORK/$name.refused.log")"
  else
    say "$name: expected the one-line GPU error and exit 2, got exit $rc"; FAILED+=("$name-refusal")
    tail -n 5 "$WORK/$name.refused.log" | sed 's/^/    /' | tee -a "$LOG"
  fi
}
have_trt() { "$PY" -c "import torch_tensorrt" > /dev/null 2>&1; }

step_env() {
  {
    echo "date: $(date -u +%FT%TZ)  host: $(hostname)  rehearse: $REHEARSE"
    if command -v nvidia-smi > /dev/null; then
      nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1
    else
      echo "nvidia-smi: none"
    fi
    "$PY" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for m in ("numpy", "numba", "torch", "cupy", "cv2", "onnxruntime", "torch_tensorrt", "tensorrt", "mediapipe"):
    try:
        mod = importlib.import_module(m)
        print(m, getattr(mod, "__version__", "?"))
    except Exception as exc:  # noqa: BLE001
        print(m, "-", type(exc).__name__)
try:
    import torch
    print("torch cuda:", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))
except Exception as exc:  # noqa: BLE001
    print("torch cuda: -", exc)
EOF
    "$PY" run.py devices 2>&1 | tail -n 12
  } > "$WORK/env.txt" 2>&1
  cat "$WORK/env.txt" | tee -a "$LOG"
}

step_pytest() {
  run pytest-nvcc 90 "$PY" -m pytest -q -p no:cacheprovider -rs tests/kernels/test_cuda_compile.py
  run pytest-cuda 180 "$PY" -m pytest -m cuda -q -p no:cacheprovider -rs --timeout 120 tests
}

step_kernels() {
  if [ $REHEARSE = 1 ]; then
    refused kernels-cuda "$PY" -m bench.gpu_check kernels --device cuda --profile s1
  fi
  run "kernels-$DEV" 90 "$PY" -m bench.gpu_check kernels --device $DEV --profile s1 --json "$WORK/kernels-$DEV.json"
}

step_bench() {
  local tier profile
  for tier in warp:s1 atlas:v18 neural:n18; do
    profile=${tier#*:}; tier=${tier%%:*}
    local cmd=("$PY" run.py bench --profile "$profile" --driver "$DRIVER" --frames $FRAMES --warmup 30)
    if [ $REHEARSE = 1 ]; then
      refused "bench-$tier" "${cmd[@]}" --compare device=cpu,cuda
      run "bench-$tier" 300 "${cmd[@]}" --device cpu --json "$WORK/bench-$tier.json" --plot "$WORK/bench-$tier.png"
    else
      run "bench-$tier" 100 "${cmd[@]}" --compare device=cpu,cuda --json "$WORK/bench-$tier.json" --plot "$WORK/bench-$tier.png"
    fi
    pack
  done
  # the face swap (warp tier on s1, the driver's own frames): swap_blend and the attribute stage
  local swap=("$PY" run.py bench --profile s1 --driver "$DRIVER" --frames $FRAMES --warmup 30 --mode swap)
  if [ $REHEARSE = 1 ]; then
    refused bench-swap "${swap[@]}" --compare device=cpu,cuda
    run bench-swap 300 "${swap[@]}" --device cpu --json "$WORK/bench-swap.json"
  else
    run bench-swap 100 "${swap[@]}" --compare device=cpu,cuda --json "$WORK/bench-swap.json"
  fi
  pack
  if [ $REHEARSE = 0 ] && have_trt; then
    run bench-neural-tensorrt 150 "$PY" run.py bench --profile n18 --driver "$DRIVER" --frames $FRAMES \
      --device cuda --compare backend=torch,tensorrt --json "$WORK/bench-neural-tensorrt.json"
  else
    say "bench-neural-tensorrt: skipped (no torch_tensorrt here: --backend tensorrt would fall back to torch FP16 + CUDA graphs)"
  fi
}

step_live() {
  local tier profile extra=()
  [ $REHEARSE = 1 ] && extra=(--frames $FRAMES)
  for tier in warp:s1 atlas:v18 neural:n18; do
    profile=${tier#*:}; tier=${tier%%:*}
    [ $REHEARSE = 1 ] && refused "live-$tier-cuda" "$PY" run.py live --profile "$profile" --driver "$DRIVER" --device cuda --sink null
    run "live-$tier" 60 "$PY" run.py live --profile "$profile" --driver "$DRIVER" --device $DEV --sink null --offline "${extra[@]}"
  done
}

step_streams() {
  local drivers=$C/d10.track.npz,$C/d14.track.npz,$C/d19.track.npz counts=1,2,4,8,12,16
  if [ $REHEARSE = 1 ]; then
    refused streams-cuda "$PY" run.py bench --streams 1 --device cuda --profile n18 --driver "$drivers" --frames $FRAMES
    counts=1,2
  fi
  run streams 200 "$PY" run.py bench --streams $counts --device $DEV --profile n18 --driver "$drivers" \
    --frames $FRAMES --warmup 30 --json "$WORK/streams.json" --plot "$WORK/streams.png"
}

step_profile() {
  local job name profile mode
  for job in warp:s1:reenact swap:s1:swap neural:n18:reenact; do
    IFS=: read -r name profile mode <<< "$job"
    run "profile-$name" 90 "$PY" -m cProfile -o "$WORK/profile-$name.pstats" run.py live --profile "$profile" \
      --driver "$DRIVER" --device $DEV --sink null --offline --frames $FRAMES --mode "$mode"
    "$PY" -c 'import pstats, sys
s = pstats.Stats(sys.argv[1])
s.sort_stats("tottime").print_stats(30)
s.sort_stats("cumulative").print_stats(45)' "$WORK/profile-$name.pstats" > "$WORK/profile-$name.txt" 2>&1
  done
}

say "GPU check: steps [$STEPS], device $DEV, results → $OUTDIR"
T0=$SECONDS
for s in $STEPS; do
  case $s in
    env|pytest|kernels|bench|streams|live|profile) "step_$s" ;;
    *) say "unknown step $s (env pytest kernels bench streams live profile)"; FAILED+=("$s") ;;
  esac
  pack
done
"$PY" -m bench.gpu_check summary "$WORK" > /dev/null 2>&1 || say "summary: failed"
cp "$WORK/summary.md" "$OUTDIR/summary.md" 2>/dev/null
cp "$LOG" "$WORK/check.log"
pack
say "done in $((SECONDS - T0)) s; failed: ${FAILED[*]:-none}; $(du -h "$OUTDIR/gpu-check.tar.gz" | cut -f1) in $OUTDIR/gpu-check.tar.gz"
[ ${#FAILED[@]} = 0 ]
