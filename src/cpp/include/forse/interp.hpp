// Interpolation inside a patch and the back-projection windows, written to match the numpy
// reference (forse.projection._interp_patch / _window_weight) operation by operation.
#pragma once
#include "healpix.hpp"

namespace forse {

constexpr double kUnseen = -1.6375e30;

// x - x is 0 only for finite x (needs IEEE semantics: no -ffast-math), on host and device.
FORSE_HD bool finite(double x) { return x - x == 0.0; }

// healpy's mask_bad rule (|m - UNSEEN| <= 1e-5 |UNSEEN|) plus NaN/inf.
FORSE_HD bool is_bad(double m) {
  return !finite(m) || ::fabs(m - kUnseen) <= 1e-5 * 1.6375e30;
}

// Bilinear at fractional (r, c) inside [0, n-1]^2; img is row-major n x n with element stride 1.
// r, c >= 0 here, so truncation is floor (and avoids a libm call without SSE4.1).
template <typename T>
FORSE_HD double bilinear(const T* img, int n, double r, double c) {
  long r0 = long(r), c0 = long(c);
  if (r0 > n - 2) r0 = n - 2;
  if (c0 > n - 2) c0 = n - 2;
  const double fr = r - double(r0), fc = c - double(c0);
  const T* p = img + r0 * n + c0;
  return (1 - fr) * ((1 - fc) * double(p[0]) + fc * double(p[1])) +
         fr * ((1 - fc) * double(p[n]) + fc * double(p[n + 1]));
}

// Keys cubic convolution weights (a = -0.5) for offsets -1, 0, 1, 2 at fraction f.
FORSE_HD void cubic_weights(double f, double w[4]) {
  const double a = -0.5;
  auto near_ = [a](double t) { return ((a + 2) * t - (a + 3)) * t * t + 1; };
  auto far_ = [a](double t) { return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a; };
  w[0] = far_(1 + f);
  w[1] = near_(f);
  w[2] = near_(1 - f);
  w[3] = far_(2 - f);
}

// Bicubic (4x4 cubic convolution) with indices clamped to the patch; r, c >= 0.
template <typename T>
FORSE_HD double bicubic(const T* img, int n, double r, double c) {
  const long r0 = long(r), c0 = long(c);
  double wr[4], wc[4];
  cubic_weights(r - double(r0), wr);
  cubic_weights(c - double(c0), wc);
  long ci[4];
  for (int b = 0; b < 4; ++b) {
    long v = c0 + b - 1;
    ci[b] = v < 0 ? 0 : (v > n - 1 ? n - 1 : v);
  }
  double out = 0.0;
  for (int a = 0; a < 4; ++a) {
    long ri = r0 + a - 1;
    ri = ri < 0 ? 0 : (ri > n - 1 ? n - 1 : ri);
    const T* row = img + ri * n;
    double acc = 0.0;
    for (int b = 0; b < 4; ++b) acc = acc + wc[b] * double(row[ci[b]]);
    out = out + wr[a] * acc;
  }
  return out;
}

// Smooth (C2) ramp from 0 at the patch border to 1 at `width` pixels inside: the quintic
// smoothstep a^3 (10 - 15 a + 6 a^2), which like sin^2 satisfies t(a) + t(1 - a) = 1 (two
// ramps crossing over the same overlap sum to one) but needs no transcendental call.
FORSE_HD double taper_1d(double s, int n, double inv_width) {
  double dist = s < (n - 1) - s ? s : (n - 1) - s;
  double a = dist * inv_width;
  if (a >= 1.0) return 1.0;
  if (a <= 0.0) return 0.0;
  return a * a * a * (10.0 + a * (-15.0 + 6.0 * a));
}

enum WindowKind { kTaper = 0, kFlat = 1, kArray = 2 };

FORSE_HD double window_weight(int kind, const double* warr, int n, double inv_width, double r, double c) {
  if (kind == kTaper) return taper_1d(r, n, inv_width) * taper_1d(c, n, inv_width);
  if (kind == kFlat) return 1.0;
  return bilinear(warr, n, r, c);
}

}  // namespace forse
