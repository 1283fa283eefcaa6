#!/usr/bin/env bash
# GAN check on a CUDA machine: 200 training steps of the ForSE paper configuration (320^2 patches,
# width 1.0, batch 16) and full-sky inference (312 patches of 320^2 = Nside 2048, regular tiling),
# in float32 and then mixed bfloat16 + XLA; prints steps/s and patches/s.
# Needs a TensorFlow that sees the GPU (pip install "tensorflow[and-cuda]").
# Usage: bash bench/gpu/gpu_train_check.sh [extra args for bench/gpu/gpu_train_check.py]
set -euo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 bench/gpu/gpu_train_check.py "$@"
python3 bench/gpu/gpu_train_check.py --mixed-precision --xla "$@"
