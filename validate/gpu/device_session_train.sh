#!/usr/bin/env bash
# Whole training steps in the ways PyTorch users run them (about 6 minutes on an H200):
#   bash validate/gpu/device_session_train.sh OUT
# eager with AdamW(fused=True); regional torch.compile with fused AdamW (GPT and Llama-style blocks);
# eager Llama-style and checkpointed runs; one profiled compiled step per size. Each part has its own
# time limit and writes its own CSV into a scratch folder, which is packed into OUT/train.tgz after
# every part (the device tool returns a handful of files per run, so one archive carries them all).
set -uo pipefail
out="${1:?usage: device_session_train.sh OUT}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
mkdir -p "$out"
nvidia-smi > "$work/nvidia-smi.txt" 2>&1 || true
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" > "$work/versions.txt" 2>&1 || true
part() {   # part SECONDS ARGS...: one train_e2e.py run under a time limit, then pack what exists
    local limit="$1"; shift
    echo "== train_e2e.py $* (limit ${limit}s)"
    OUT="$work" timeout "$limit" python "$here/train_e2e.py" "$@" || echo "device_session_train: '$*' failed or timed out"
    gzip -f "$work"/*_trace.json 2>/dev/null
    tar czf "$out/train.tgz" -C "$work" .
}
part 100 --optimizer fused
part 240 --compile --optimizer fused
part 120 --compile --optimizer fused --arch llama
part 80 --arch llama
part 80 --checkpoint
part 90 --compile --optimizer fused --trace 12x768,32x2560
echo "device_session_train: wrote $out/train.tgz"
