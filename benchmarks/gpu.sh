#!/usr/bin/env bash
# ResNet50 training throughput at 224×224, batch 256, on an NVIDIA GPU: float32 (TF32 on
# Ampere and later), mixed precision, and mixed precision + XLA — plain Keras and through mtl.
# Needs no network (random weights and data). Run from the repository root after
# `make install` and `.venv/bin/pip install -e '.[gpu]'`; prints one JSON line per row.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
for impl in keras mtl; do
  "$PY" benchmarks/gpu_resnet50.py --impl "$impl" --precision float32
  "$PY" benchmarks/gpu_resnet50.py --impl "$impl" --precision mixed_float16
  "$PY" benchmarks/gpu_resnet50.py --impl "$impl" --precision mixed_float16 --xla
done
