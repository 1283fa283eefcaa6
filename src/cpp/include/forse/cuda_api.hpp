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

// Minkowski functionals: images (N, ny, nx) C-contiguous and sorted thresholds u (nT) on the
// device; out (3, N, nT) float64 (v0, v1, v2); scratch of minkowski_scratch(...) bytes. Does not
// wait for the stream; at most 65535 images per call.
int64_t minkowski_scratch(int64_t N, int64_t ny, int64_t nx, int nT);

template <typename T>
void minkowski(const T* images, int64_t N, int64_t ny, int64_t nx, const double* u, int nT,
               double* out, double* scratch, std::uintptr_t stream);

}  // namespace forse::cuda
