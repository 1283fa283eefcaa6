// Vectorized HEALPix geometry over arrays (OpenMP), thin loops over forse::Healpix.
#include "forse/cpu_api.hpp"
#include "forse/healpix.hpp"

namespace forse::cpu {

void ang2pix(int64_t nside, const double* theta, const double* phi, int64_t n, bool nest,
             int64_t* out) {
  const Healpix<int64_t> hb(nside);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = hb.ang2pix(theta[i], phi[i], nest);
}

void pix2ang(int64_t nside, const int64_t* pix, int64_t n, bool nest, double* theta, double* phi) {
  const Healpix<int64_t> hb(nside);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) hb.pix2ang(pix[i], nest, theta[i], phi[i]);
}

void interp_weights(int64_t nside, const double* theta, const double* phi, int64_t n, bool nest,
                    int64_t* pix, double* wgt) {
  const Healpix<int64_t> hb(nside);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    int64_t p[4];
    double w[4];
    hb.interpol(theta[i], phi[i], nest, p, w);
    for (int a = 0; a < 4; ++a) {
      pix[a * n + i] = p[a];
      wgt[a * n + i] = w[a];
    }
  }
}

void ring2nest(int64_t nside, const int64_t* in, int64_t n, int64_t* out) {
  const Healpix<int64_t> hb(nside);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = hb.ring2nest(in[i]);
}

void nest2ring(int64_t nside, const int64_t* in, int64_t n, int64_t* out) {
  const Healpix<int64_t> hb(nside);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = hb.nest2ring(in[i]);
}

}  // namespace forse::cpu
