#!/usr/bin/env bash
# One short GPU check for the native core (run on a CUDA machine, e.g. an H200):
#   1. build forse with the CUDA kernels (architecture 90 = H100/H200 unless CUDAARCHS is set),
#   2. compare CUDA against the CPU core on fresh random inputs,
#   3. time projection (312 patches of 320^2), back-projection (Nside 2048) and the Minkowski
#      functionals (312 patches x 32 thresholds) with CUDA events.
# Usage: bash bench/gpu/gpu_check.sh [--json DIR]      (needs nvcc, a GPU and CuPy: pip install cupy-cuda12x)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -m pip install -q cupy-cuda12x 2>/dev/null || true
python3 -m pip install -q --no-build-isolation . \
  -Ccmake.define.FORSE_USE_CUDA=ON -Ccmake.define.CMAKE_CUDA_ARCHITECTURES="${CUDAARCHS:-90}"
python3 - <<'PY'
import forse._core as c
assert c.HAS_CUDA, "forse was built without CUDA"
print("CUDA devices:", c.cuda_device_count())
PY
python3 bench/gpu/gpu_check_projection.py ${out:+--json "$out/gpu_projection.json"}
python3 bench/gpu/gpu_check_minkowski.py ${out:+--json "$out/gpu_minkowski.json"}
