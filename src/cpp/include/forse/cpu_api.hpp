// Entry points of the CPU backend (src/cpp/cpu/*.cpp), called by the bindings.
#pragma once
#include <cstdint>

namespace forse::cpu {

// Vectorized HEALPix geometry (for tests and users of forse._core).
void ang2pix(int64_t nside, const double* theta, const double* phi, int64_t n, bool nest,
             int64_t* out);
void pix2ang(int64_t nside, const int64_t* pix, int64_t n, bool nest, double* theta, double* phi);
void interp_weights(int64_t nside, const double* theta, const double* phi, int64_t n, bool nest,
                    int64_t* pix /* (4, n) */, double* wgt /* (4, n) */);
void ring2nest(int64_t nside, const int64_t* in, int64_t n, int64_t* out);
void nest2ring(int64_t nside, const int64_t* in, int64_t n, int64_t* out);

// maps: k maps, element (a, p) at maps[a * stride_k + p * stride_p]; out (N, k, npix, npix).
template <typename T>
void project(const T* maps, int64_t k, int64_t stride_k, int64_t stride_p, int64_t nside,
             const double* lon, const double* lat, int64_t npatch, int npix, double d, bool nest,
             bool nearest, bool pol, T* out, int nthreads);

// patches (N, k, npix, npix) C-contiguous -> out (k, 12 nside^2); weights (12 nside^2) or null.
template <typename T>
void backproject(const T* patches, int64_t npatch, int64_t k, int npix, const double* lon,
                 const double* lat, int64_t nside, double d, int window_kind, const double* warr,
                 double taper_fraction, bool bicubic, bool nest, bool pol, T* out, double* weights,
                 int nthreads);

// The CUDA back-projection's per-pixel gather algorithm run on the CPU (tests it without a GPU).
template <typename T>
void backproject_gather(const T* patches, int64_t npatch, int64_t k, int npix, const double* lon,
                        const double* lat, int64_t nside, double d, int window_kind,
                        const double* warr, double taper_fraction, bool bicubic, bool nest,
                        bool pol, T* out, double* weights, int nthreads);

// Minkowski functionals (minkowski_cpu.cpp): images (N, ny, nx) C-contiguous, thresholds u
// sorted ascending (T >= 1, finite); writes raw v0, v1, v2 as (N, T) float64. Deterministic: the
// work split depends only on the shapes, never on the thread count.
template <typename T>
void minkowski(const T* images, int64_t N, int64_t ny, int64_t nx, const double* u, int nT,
               double* v0, double* v1, double* v2, int nthreads);

// Whether minkowski uses its AVX2 path (when the CPU has AVX2); enable = 0/1 switches it off/on
// for testing the portable path, -1 only asks. Returns the state before the call.
bool minkowski_simd(int enable);

}  // namespace forse::cpu
