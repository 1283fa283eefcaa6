// Entry points of the CUDA backend (src/cpp/cuda/*.cu). Device pointers come from CuPy arrays;
// lon/lat and the window are host arrays; work is queued on `stream` (CuPy's current stream).
#pragma once
#include <cstdint>

namespace forse::cuda {

template <typename T>
void project(const T* maps, int64_t k, int64_t stride_k, int64_t stride_p, int64_t nside,
             const double* lon, const double* lat, int64_t npatch, int npix, double d, bool nest,
             bool nearest, bool pol, T* out, std::uintptr_t stream);

template <typename T>
void backproject(const T* patches, int64_t npatch, int64_t k, int npix, const double* lon,
                 const double* lat, int64_t nside, double d, int window_kind,
                 const double* window_host, double taper_fraction, bool bicubic, bool nest,
                 bool pol, T* out, double* weights, std::uintptr_t stream);

}  // namespace forse::cuda
