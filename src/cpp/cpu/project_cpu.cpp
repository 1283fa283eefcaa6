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
  const double c = 0.5 * double(npix - 1);
  const double nan = std::numeric_limits<double>::quiet_NaN();
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
      const double y = (c - double(i)) * d;
      double vals[16];  // k <= 16 is checked by the binding
      for (int j = 0; j < npix; ++j) {
        const double x = (double(j) - c) * d;
        double v[3], theta, phi;
        plane_to_vec(f, x, y, v);
        vec_to_ang(v, theta, phi);
        // cos(theta) without a cos call: equal to it within an ulp, and the interpolation is
        // continuous across ring boundaries, so the value moves by rounding only.
        const double z = v[2] / ::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        if (nearest) {
          const int64_t p = hb.ang2pix(theta, phi, nest);
          for (int64_t a = 0; a < k; ++a) {
            const double m = double(maps[a * stride_k + p * stride_p]);
            vals[a] = is_bad(m) ? nan : m;
          }
        } else {
          int64_t p[4];
          double w[4];
          hb.interpol_z(theta, z, phi, nest, rt, p, w);
          for (int64_t a = 0; a < k; ++a) {
            const T* ma = maps + a * stride_k;
            double s = 0.0;
            bool bad = false;
            for (int r = 0; r < 4; ++r) {  // same order as healpy's get_interp_val
              const double m = double(ma[p[r] * stride_p]);
              if (is_bad(m)) {
                bad = bad || (w[r] != 0.0);
              } else {
                s += w[r] * m;
              }
            }
            vals[a] = bad ? nan : s;
          }
        }
        if (pol) rotate_qu(vals[k - 2], vals[k - 1], pol_angle(f, theta, phi), true);
        T* o = out + (n * k) * plane + int64_t(i) * npix + j;
        for (int64_t a = 0; a < k; ++a) o[a * plane] = T(vals[a]);
      }
    }
  }
}

template void project<float>(const float*, int64_t, int64_t, int64_t, int64_t, const double*,
                             const double*, int64_t, int, double, bool, bool, bool, float*, int);
template void project<double>(const double*, int64_t, int64_t, int64_t, int64_t, const double*,
                              const double*, int64_t, int, double, bool, bool, bool, double*, int);

}  // namespace forse::cpu
