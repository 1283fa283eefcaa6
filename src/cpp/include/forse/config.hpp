// Build-wide definitions of the C++/CUDA core, included by every header that needs them (and
// only defined here): the host/device function markers and the OpenMP thread-count shim.
#pragma once

// FORSE_HD: a function usable from host and device code (plain `inline` in host-only builds).
// FORSE_HD_FORCEINLINE: the same, forced inline on the device (the Minkowski cell pieces).
#if defined(__CUDACC__)
#define FORSE_HD __host__ __device__ inline
#define FORSE_HD_FORCEINLINE __host__ __device__ __forceinline__
#else
#define FORSE_HD inline
#define FORSE_HD_FORCEINLINE inline
#endif

// The thread count of the CPU kernels. Host C++ only: nvcc compiles the .cu files without
// OpenMP, and one inline function must not have two definitions in the same module.
#if !defined(__CUDACC__)
#ifdef _OPENMP
#include <omp.h>
#endif

namespace forse {

// Threads available to a parallel region: omp_get_max_threads(), or 1 without OpenMP.
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Threads a CPU kernel uses for its `nthreads` argument: that many when > 0, else max_threads().
inline int thread_count(int requested) { return requested > 0 ? requested : max_threads(); }

}  // namespace forse
#endif
