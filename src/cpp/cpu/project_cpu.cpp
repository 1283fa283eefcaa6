// HEALPix -> gnomonic patches on the CPU: one independent output pixel per (patch, row, col),
// so the loop parallelizes without any shared writes.
#include <cmath>
#include <limits>
#include <vector>

#include "forse/cpu_api.hpp"
#include "forse/gnomonic.hpp"
#include "forse/interp.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace forse::cpu {

template <typename T>
void project(const T* maps, int64_t k, int64_t stride_k, int64_t stride_p, int64_t nside,
             const double* lon, const double* lat, int64_t npatch, int npix, double d, bool nest,
             bool nearest, bool pol, T* out, int nthreads) {
  const Healpix<int64_t> hb(nside);
  const int64_t plane = int64_t(npix) * npix;
  // Ring colatitudes, computed exactly as healpix_base does, once instead of twice per pixel.
  std::vector<double> ring_theta(4 * nside);
  for (int64_t r = 1; r < 4 * nside; ++r) ring_theta[r] = hb.ring(r).theta;
  const double* rt = ring_theta.data();
#ifdef _OPENMP
  const int nt = nthreads > 0 ? nthreads : omp_get_max_threads();
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
#endif
  for (int64_t n = 0; n < npatch; ++n) {
    for (int i = 0; i < npix; ++i) {
      const PatchFrame f = make_frame(lon[n], lat[n]);
      T* row = out + (n * k) * plane + int64_t(i) * npix;
      for (int j = 0; j < npix; ++j)
        project_pixel(maps, k, stride_k, stride_p, hb, rt, f, i, j, npix, d, nest, nearest, pol,
                      row + j, plane);
    }
  }
}

template void project<float>(const float*, int64_t, int64_t, int64_t, int64_t, const double*,
                             const double*, int64_t, int, double, bool, bool, bool, float*, int);
template void project<double>(const double*, int64_t, int64_t, int64_t, int64_t, const double*,
                              const double*, int64_t, int, double, bool, bool, bool, double*, int);

}  // namespace forse::cpu
