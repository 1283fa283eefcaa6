// Patches -> HEALPix on the CPU, as a gather: threads own whole HEALPix rings; for each ring
// the patches whose bounding cap meets it are visited in index order and summed into a
// ring-local buffer, so results are bit-reproducible for any thread count and memory stays at
// the output maps (plus the optional weight map) and a few ring-sized buffers per thread.
#include <cmath>
#include <vector>

#include "forse/backproject.hpp"
#include "forse/config.hpp"
#include "forse/cpu_api.hpp"
#include "forse/interp.hpp"

namespace forse::cpu {
namespace {

// Per-ring constants of one patch: the patch-frame components of the pixel vectors
// (sth cos phi, sth sin phi, z) are a cos phi + b sin phi + c.
struct RingCoeffs {
  double ar, br, cr, ae, be, ce, an, bn, cn;
};

// Accumulate one patch into the ring buffers for pixels [i0, i1) of the ring. The template
// flags hoist the interpolation, window and stack-size choices out of the pixel loop.
template <typename T, bool CUBIC, int WIN, bool SINGLE>
void ring_segment(const T* img, int64_t k, int64_t plane, int npix, double c, double d,
                  double inv_width, const double* warr, const RingCoeffs& q, const double* cphi,
                  const double* sphi, int64_t i0, int64_t i1, bool pol, const PatchFrame& f,
                  double z, double sth, double* acc, double* wsum, int64_t nr) {
  const double hi_lim = double(npix - 1);
  double vals[16];
  for (int64_t i = i0; i < i1; ++i) {
    const double cp = cphi[i], sp = sphi[i];
    const double dot = q.ar * cp + q.br * sp + q.cr;
    if (!(dot > 0.0)) continue;
    const double inv = 1.0 / (dot * d);
    const double col = c + (q.ae * cp + q.be * sp + q.ce) * inv;
    const double row = c - (q.an * cp + q.bn * sp + q.cn) * inv;
    if (!(col >= 0.0 && col <= hi_lim && row >= 0.0 && row <= hi_lim)) continue;
    const double w = window_weight(WIN, warr, npix, inv_width, row, col);
    if (!(w > 0.0)) continue;
    if (SINGLE) {
      const double v = CUBIC ? forse::bicubic(img, npix, row, col) : bilinear(img, npix, row, col);
      if (!finite(v)) continue;
      acc[i] += w * v;
      wsum[i] += w;
      continue;
    }
    // Same sampling and rotation as gather_pixel (backproject.hpp), written out here: a shared
    // helper measured 20 % slower in this loop (312 patches, Nside 2048, Q/U).
    bool ok = true;
    for (int64_t a = 0; a < k; ++a) {
      const T* im = img + a * plane;
      vals[a] = CUBIC ? forse::bicubic(im, npix, row, col) : bilinear(im, npix, row, col);
      ok = ok && finite(vals[a]);
    }
    if (!ok) continue;
    if (pol) {
      double c2, s2;
      pol_rotation(f, z, sth, cp, sp, c2, s2);
      rotate_qu(vals[k - 2], vals[k - 1], c2, s2, false);
    }
    for (int64_t a = 0; a < k; ++a) acc[a * nr + i] += w * vals[a];
    wsum[i] += w;
  }
}

template <typename T>
using SegmentFn = void (*)(const T*, int64_t, int64_t, int, double, double, double, const double*,
                           const RingCoeffs&, const double*, const double*, int64_t, int64_t, bool,
                           const PatchFrame&, double, double, double*, double*, int64_t);

template <typename T, bool CUBIC, int WIN>
SegmentFn<T> pick_single(bool single) {
  return single ? &ring_segment<T, CUBIC, WIN, true> : &ring_segment<T, CUBIC, WIN, false>;
}

template <typename T, bool CUBIC>
SegmentFn<T> pick_window(int kind, bool single) {
  if (kind == kTaper) return pick_single<T, CUBIC, kTaper>(single);
  if (kind == kFlat) return pick_single<T, CUBIC, kFlat>(single);
  return pick_single<T, CUBIC, kArray>(single);
}

}  // namespace

template <typename T>
void backproject(const T* patches, int64_t npatch, int64_t k, int npix, const double* lon,
                 const double* lat, int64_t nside, double d, int window_kind, const double* warr,
                 double taper_fraction, bool bicubic, bool nest, bool pol, T* out, double* weights,
                 int nthreads) {
  const Healpix<int64_t> hb(nside);
  const double c = 0.5 * double(npix - 1);
  const double inv_width = 1.0 / (taper_fraction * double(npix - 1));
  const int64_t plane = int64_t(npix) * npix;
  const int64_t npix_map = hb.npix;
  const bool single = (k == 1) && !pol;
  const SegmentFn<T> segment = bicubic ? pick_window<T, true>(window_kind, single)
                                       : pick_window<T, false>(window_kind, single);
  std::vector<PatchFrame> frames(npatch);
  std::vector<PatchCap> caps(npatch);
  for (int64_t p = 0; p < npatch; ++p) {
    frames[p] = make_frame(lon[p], lat[p]);
    caps[p] = make_cap(frames[p], npix, d);
  }
  const int64_t nring = 4 * nside - 1;
#ifdef _OPENMP
  const int nt = thread_count(nthreads);
#pragma omp parallel num_threads(nt)
#endif
  {
    const int64_t maxr = 4 * nside;
    std::vector<double> cphi(maxr), sphi(maxr), acc(maxr * k), wsum(maxr);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 2)
#endif
    for (int64_t r = 1; r <= nring; ++r) {
      int64_t start, nr;
      double theta;
      bool shifted;
      hb.ring_info(r, start, nr, theta, shifted);
      double z, sth;
      hb.ring_z(r, z, sth);
      const double dphi_pix = kTwoPi / double(nr);
      const double s = shifted ? 0.5 : 0.0;
      const int64_t q4 = nr / 4;  // rings are symmetric under phi -> phi + pi/2
      // cos/sin of the pixel longitudes by rotation, re-anchored with libm every 32 pixels
      // (the recurrence drifts by ~1e-16 per step).
      const double cd = ::cos(dphi_pix), sd = ::sin(dphi_pix);
      double cp = 1.0, sp = 0.0;
      for (int64_t i = 0; i < q4; ++i) {
        if ((i & 31) == 0) {
          const double phi = (double(i) + s) * dphi_pix;
          cp = ::cos(phi);
          sp = ::sin(phi);
        } else {
          const double c2 = cp * cd - sp * sd;
          sp = sp * cd + cp * sd;
          cp = c2;
        }
        cphi[i] = cp;
        sphi[i] = sp;
        cphi[i + q4] = -sp;
        sphi[i + q4] = cp;
        cphi[i + 2 * q4] = -cp;
        sphi[i + 2 * q4] = -sp;
        cphi[i + 3 * q4] = sp;
        sphi[i + 3 * q4] = -cp;
      }
      std::fill(acc.begin(), acc.begin() + nr * k, 0.0);
      std::fill(wsum.begin(), wsum.begin() + nr, 0.0);
      for (int64_t p = 0; p < npatch; ++p) {
        int64_t lo, hi;
        if (!ring_window(caps[p], theta, z, sth, nr, shifted, lo, hi)) continue;
        const PatchFrame& f = frames[p];
        const RingCoeffs q{sth * f.er[0], sth * f.er[1], z * f.er[2],
                           sth * f.ee[0], sth * f.ee[1], z * f.ee[2],
                           sth * f.en[0], sth * f.en[1], z * f.en[2]};
        const T* img = patches + p * k * plane;
        int64_t i0 = lo % nr;
        if (i0 < 0) i0 += nr;
        const int64_t len = hi - lo + 1;
        const int64_t first = (i0 + len <= nr) ? len : nr - i0;  // split at the ring's wrap
        segment(img, k, plane, npix, c, d, inv_width, warr, q, cphi.data(), sphi.data(), i0,
                i0 + first, pol, f, z, sth, acc.data(), wsum.data(), nr);
        if (first < len)
          segment(img, k, plane, npix, c, d, inv_width, warr, q, cphi.data(), sphi.data(), 0,
                  len - first, pol, f, z, sth, acc.data(), wsum.data(), nr);
      }
      for (int64_t i = 0; i < nr; ++i) {
        const int64_t pix = start + i;
        const int64_t idx = nest ? hb.ring2nest(pix) : pix;
        const double ws = wsum[i];
        for (int64_t a = 0; a < k; ++a)
          out[a * npix_map + idx] = ws > 0.0 ? T(acc[a * nr + i] / ws) : T(kUnseen);
        if (weights) weights[idx] = ws;
      }
    }
  }
}

template <typename T>
void backproject_gather(const T* patches, int64_t npatch, int64_t k, int npix, const double* lon,
                        const double* lat, int64_t nside, double d, int window_kind,
                        const double* warr, double taper_fraction, bool bicubic, bool nest,
                        bool pol, T* out, double* weights, int nthreads) {
  const Healpix<int64_t> hb(nside);
  std::vector<PatchFrame> frames;
  std::vector<int64_t> offsets;
  std::vector<int> cand;
  ring_candidates(hb, lon, lat, npatch, npix, d, frames, offsets, cand);
  const double inv_width = 1.0 / (taper_fraction * double(npix - 1));
#ifdef _OPENMP
  const int nt = thread_count(nthreads);
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
  for (int64_t pix = 0; pix < hb.npix; ++pix) {
    const int64_t r = hb.pix2ring(pix);
    gather_pixel(patches, k, npix, hb, frames.data(), cand.data() + offsets[r],
                 offsets[r + 1] - offsets[r], d, window_kind, warr, inv_width, bicubic, nest, pol,
                 pix, out, weights);
  }
}

template void backproject_gather<float>(const float*, int64_t, int64_t, int, const double*,
                                        const double*, int64_t, double, int, const double*, double,
                                        bool, bool, bool, float*, double*, int);
template void backproject_gather<double>(const double*, int64_t, int64_t, int, const double*,
                                         const double*, int64_t, double, int, const double*, double,
                                         bool, bool, bool, double*, double*, int);

template void backproject<float>(const float*, int64_t, int64_t, int, const double*, const double*,
                                 int64_t, double, int, const double*, double, bool, bool, bool,
                                 float*, double*, int);
template void backproject<double>(const double*, int64_t, int64_t, int, const double*,
                                  const double*, int64_t, double, int, const double*, double, bool,
                                  bool, bool, double*, double*, int);

}  // namespace forse::cpu
