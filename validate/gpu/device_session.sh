#!/usr/bin/env bash
# One short, prepared measurement session for a loaned GPU (about 6-8 minutes on an H100):
#   bash validate/gpu/device_session.sh OUT
# 1. checks the harness on tiny shapes (seconds);
# 2. the full bf16 run: GEMMs, SDPA, elementwise/norm/softmax, copies, row-wise kernels by row width,
#    GEMMs re-read by a loop, embedding, the smallest kernels' floors (graph replay against
#    profiled durations), memory microbenchmarks, scalar-load row kernels,
#    board power phases and one profiled training step (each operator row names its kernels);
# 3. steady-state rows: each kernel soaked 5 s at the power limit before it is timed (--quick).
# Each part writes into its own folder under OUT and keeps partial results if a later part fails.
set -uo pipefail
out="${1:?usage: device_session.sh OUT}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
python "$here/run_all.py" --out "$out/smoke" --smoke || { echo "device_session: the smoke run failed; stopping."; exit 1; }
python "$here/run_all.py" --out "$out/run" || echo "device_session: the full run failed (partial results kept)."
python "$here/run_all.py" --out "$out/steady" --soak 5 --quick \
    --skip elementwise,copies,rowwise,reuse,floors,microbench,scalar,power,train || echo "device_session: the steady run failed."
echo "device_session: wrote $out/{smoke,run,steady}"
