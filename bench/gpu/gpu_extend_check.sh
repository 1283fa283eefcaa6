#!/usr/bin/env bash
# Issue 5's CUDA target on one GPU: the whole `forse extend` T run at Nside 2048 with the
# paper-size generator in <= 30 s, I/O included. Builds forse with the CUDA kernels and installs
# a TensorFlow that sees the GPU, then times the command line (bench/gpu/gpu_extend_check.py).
# Usage: bash bench/gpu/gpu_extend_check.sh [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -m pip install -q "tensorflow[and-cuda]"
python3 -m pip install -q --no-build-isolation . \
  -Ccmake.define.FORSE_USE_CUDA=ON -Ccmake.define.CMAKE_CUDA_ARCHITECTURES="${CUDAARCHS:-90}"
python3 -c "import tensorflow as tf; print('TF GPUs:', tf.config.list_physical_devices('GPU'))"
python3 bench/gpu/gpu_extend_check.py "$@"
