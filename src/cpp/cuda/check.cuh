// The one CUDA error check of the backend: failures become RuntimeError in Python.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace forse::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("forse CUDA error in ") + what + ": " +
                             cudaGetErrorString(e));
}

}  // namespace forse::cuda
