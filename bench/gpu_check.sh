#!/usr/bin/env bash
# One short GPU check on a CUDA machine: build with CUDA, run the GPU tests, compare the CUDA
# kernels with the CPU ones on fresh random inputs and time them with CUDA events.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --no-build-isolation -e . -Ccmake.define.FORSE_USE_CUDA=ON \
  -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=90 -Cbuild-dir=build/cuda >/dev/null
python3 -c "import cupy" 2>/dev/null || python3 -m pip install cupy-cuda12x >/dev/null
mkdir -p bench/out
# --- projection (native-proj) ---
python3 -m pytest -q -m gpu tests/test_projection.py
python3 bench/gpu_check_projection.py --json bench/out/gpu_projection.json
# --- minkowski (native-mink) ---
