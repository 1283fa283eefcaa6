// Pieces of the deterministic (gather, no atomics) back-projection shared by CPU and CUDA:
// per-patch bounding caps and the per-ring phi window of a cap.
#pragma once
#include "gnomonic.hpp"

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

}  // namespace forse
