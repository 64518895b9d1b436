#!/usr/bin/env bash
# The generation benchmark on one NVIDIA GPU, in under 5 minutes: the table of bench/throughput.py
# for a small-preset model (6 x 384) and a GPT-2-small-shaped one (12 x 768), random weights with
# the demo checkpoint's tokenizer, bfloat16, 384-row batches. Results: var/bench/gpu-*.json.
#
#   bench/gpu.sh                  # on the GPU machine
#   bench/gpu.sh --device cpu     # the same script on CPU with a short setting (it runs; figures are small)
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --device=*) DEVICE="${1#*=}"; shift ;;
    *) echo "usage: bench/gpu.sh [--device cuda|cpu]" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
TOKENIZER=${TOKENIZER:-models/demo}   # a checkpoint whose tokenizer to borrow; built from samples/ if absent

if [ "$DEVICE" = cpu ]; then
  PRODUCTS=4; LOOP=2; BATCH=24; TOKENS=24; DTYPES=float32; BUDGET_S=120
else
  PRODUCTS=256; LOOP=8; BATCH=384; TOKENS=200; DTYPES=bfloat16; BUDGET_S=130
  "$PY" - <<'PYEOF' || { echo "bench/gpu.sh: no CUDA device visible to torch (use --device cpu)" >&2; exit 1; }
import torch, sys
sys.exit(0 if torch.cuda.is_available() else 1)
PYEOF
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

for preset in small base; do
  ckpt=var/bench/random-$preset
  if [ ! -f "$ckpt/copygen.json" ]; then
    "$PY" bench/throughput.py --make-checkpoint "$preset" --out "$ckpt" --tokenizer "$TOKENIZER"
  fi
  echo "== $preset preset on $DEVICE: $PRODUCTS products x 3 variants, $TOKENS new tokens, batch $BATCH"
  timeout "$BUDGET_S" "$PY" bench/throughput.py --checkpoint "$ckpt" --device "$DEVICE" \
    --products "$PRODUCTS" --loop-products "$LOOP" --batch-size "$BATCH" --max-new-tokens "$TOKENS" \
    --engine-dtypes "$DTYPES" --json "var/bench/gpu-$preset-$DEVICE.json"
done
