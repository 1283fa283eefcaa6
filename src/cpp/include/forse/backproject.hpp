// Pieces of the deterministic (gather, no atomics) back-projection shared by CPU and CUDA:
// per-patch bounding caps and the per-ring phi window of a cap.
#pragma once
#include <vector>

#include "interp.hpp"

namespace forse {

struct PatchCap {
  double theta, phi;        // centre
  double cos_t, sin_t;      // of the centre colatitude
  double radius, cos_r;     // circumscribing cap of the patch square
};

FORSE_HD PatchCap make_cap(const PatchFrame& f, int npix, double d) {
  PatchCap cap;
  vec_to_ang(f.er, cap.theta, cap.phi);
  cap.cos_t = f.er[2];
  cap.sin_t = ::sqrt(f.er[0] * f.er[0] + f.er[1] * f.er[1]);
  // Same radius as the numpy reference's query_disc, with a hair of margin.
  cap.radius = ::atan(::sqrt(2.0) * 0.5 * double(npix - 1) * d) + 1e-9;
  cap.cos_r = ::cos(cap.radius);
  return cap;
}

// Pixel index range [lo, hi] (may wrap; hi - lo + 1 >= nr means the whole ring) of the ring
// (colatitude theta, z, sin theta; nr pixels, shift) that may lie inside the cap.
// Returns false when the ring misses the cap.
FORSE_HD bool ring_window(const PatchCap& cap, double theta, double z, double sth, int64_t nr,
                          bool shifted, int64_t& lo, int64_t& hi) {
  if (::fabs(theta - cap.theta) > cap.radius + 1e-12) return false;
  const double denom = sth * cap.sin_t;
  const double dphi_pix = kTwoPi / double(nr);
  const double s = shifted ? 0.5 : 0.0;
  double dphi = kPi;
  if (denom > 1e-14) {
    const double cosd = (cap.cos_r - z * cap.cos_t) / denom;
    if (cosd <= -1.0) dphi = kPi;
    else if (cosd >= 1.0) dphi = 0.0;
    else dphi = ::acos(cosd);
  }
  dphi += 1e-9;
  if (dphi >= kPi) {
    lo = 0;
    hi = nr - 1;
    return true;
  }
  lo = int64_t(::ceil((cap.phi - dphi) / dphi_pix - s));
  hi = int64_t(::floor((cap.phi + dphi) / dphi_pix - s));
  if (hi - lo + 1 >= nr) {
    lo = 0;
    hi = nr - 1;
  }
  return hi >= lo;
}

// Rings [lo, hi] that the cap of a patch may touch (one ring of margin on each side).
FORSE_HD void cap_rings(const Healpix<int64_t>& hb, const PatchCap& cap, int64_t& lo, int64_t& hi) {
  const double t0 = cap.theta - cap.radius, t1 = cap.theta + cap.radius;
  lo = t0 <= 0.0 ? 1 : hb.ring_above(::cos(t0));
  hi = t1 >= kPi ? 4 * hb.nside - 1 : hb.ring_above(::cos(t1)) + 1;
  if (lo < 1) lo = 1;
  if (hi > 4 * hb.nside - 1) hi = 4 * hb.nside - 1;
}

// Host side of the per-pixel gather: patch frames and, per ring, the patches whose cap may
// reach it, in increasing patch order (CSR: ring r's candidates are cand[offsets[r] ..
// offsets[r + 1])).
inline void ring_candidates(const Healpix<int64_t>& hb, const double* lon, const double* lat,
                            int64_t npatch, int npix, double d, std::vector<PatchFrame>& frames,
                            std::vector<int64_t>& offsets, std::vector<int>& cand) {
  const int64_t nring = 4 * hb.nside;
  frames.resize(npatch);
  offsets.assign(nring + 1, 0);
  std::vector<int64_t> lo(npatch), hi(npatch);
  for (int64_t p = 0; p < npatch; ++p) {
    frames[p] = make_frame(lon[p], lat[p]);
    cap_rings(hb, make_cap(frames[p], npix, d), lo[p], hi[p]);
    for (int64_t r = lo[p]; r <= hi[p]; ++r) ++offsets[r + 1];
  }
  for (int64_t r = 0; r < nring; ++r) offsets[r + 1] += offsets[r];
  cand.assign(offsets[nring], 0);
  std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
  for (int64_t p = 0; p < npatch; ++p)
    for (int64_t r = lo[p]; r <= hi[p]; ++r) cand[fill[r]++] = int(p);
}

// Gather one HEALPix pixel (RING index `pix`) from the candidate patches `cand[0..ncand)` in
// the given (increasing) order; writes the weighted mean of the k maps to out[a * npix_map +
// idx] (idx = NEST index if nest) and the weight sum to weights[idx] if weights.
template <typename T>
FORSE_HD void gather_pixel(const T* patches, int64_t k, int npix, const Healpix<int64_t>& hb,
                           const PatchFrame* frames, const int* cand, int64_t ncand, double d,
                           int window_kind, const double* warr, double inv_width, bool cubic,
                           bool nest, bool pol, int64_t pix, T* out, double* weights) {
  int64_t start, nr;
  bool shifted;
  const int64_t r = hb.pix2ring(pix);
  hb.ring_info_small(r, start, nr, shifted);
  double z, sth;
  hb.ring_z(r, z, sth);
  const double dphi_pix = kTwoPi / double(nr);
  const double s = shifted ? 0.5 : 0.0;
  const double phi = (double(pix - start) + s) * dphi_pix;
  const double cp = ::cos(phi), sp = ::sin(phi);
  const double v[3] = {sth * cp, sth * sp, z};
  const double c = 0.5 * double(npix - 1), hi_lim = double(npix - 1);
  const int64_t plane = int64_t(npix) * npix;
  double acc[16], vals[16], ws = 0.0;
  for (int64_t a = 0; a < k; ++a) acc[a] = 0.0;
  for (int64_t q = 0; q < ncand; ++q) {
    const PatchFrame& f = frames[cand[q]];
    const double dot = dot3(v, f.er);
    if (!(dot > 0.0)) continue;
    const double inv = 1.0 / (dot * d);
    const double col = c + dot3(v, f.ee) * inv;
    const double row = c - dot3(v, f.en) * inv;
    if (!(col >= 0.0 && col <= hi_lim && row >= 0.0 && row <= hi_lim)) continue;
    const double w = window_weight(window_kind, warr, npix, inv_width, row, col);
    if (!(w > 0.0)) continue;
    const T* img = patches + int64_t(cand[q]) * k * plane;
    bool ok = true;
    for (int64_t a = 0; a < k; ++a) {
      vals[a] = cubic ? bicubic(img + a * plane, npix, row, col)
                      : bilinear(img + a * plane, npix, row, col);
      ok = ok && finite(vals[a]);
    }
    if (!ok) continue;
    if (pol) {
      double c2, s2;
      pol_rotation(f, z, sth, cp, sp, c2, s2);
      rotate_qu(vals[k - 2], vals[k - 1], c2, s2, false);
    }
    for (int64_t a = 0; a < k; ++a) acc[a] += w * vals[a];
    ws += w;
  }
  const int64_t idx = nest ? hb.ring2nest(pix) : pix;
  for (int64_t a = 0; a < k; ++a) out[a * hb.npix + idx] = ws > 0.0 ? T(acc[a] / ws) : T(kUnseen);
  if (weights) weights[idx] = ws;
}

}  // namespace forse
