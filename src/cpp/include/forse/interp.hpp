// Interpolation inside a patch and the back-projection windows, written to match the numpy
// reference (forse.projection._interp_patch / _window_weight) operation by operation.
#pragma once
#include <limits>

#include "gnomonic.hpp"

namespace forse {

constexpr double kUnseen = -1.6375e30;

// x - x is 0 only for finite x (needs IEEE semantics: no -ffast-math), on host and device.
FORSE_HD bool finite(double x) { return x - x == 0.0; }

// healpy's mask_bad rule (|m - UNSEEN| <= 1e-5 |UNSEEN|) plus NaN/inf.
FORSE_HD bool is_bad(double m) { return !finite(m) || ::fabs(m - kUnseen) <= 1e-5 * 1.6375e30; }

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

// Bicubic (4x4 cubic convolution) with indices clamped to the patch; r, c >= 0. Inside the
// patch (no clamping needed) the same sums run on a fixed 4x4 window.
template <typename T>
FORSE_HD double bicubic(const T* img, int n, double r, double c) {
  const long r0 = long(r), c0 = long(c);
  double wr[4], wc[4];
  cubic_weights(r - double(r0), wr);
  cubic_weights(c - double(c0), wc);
  if (r0 >= 1 && c0 >= 1 && r0 + 2 <= n - 1 && c0 + 2 <= n - 1) {
    const T* p = img + (r0 - 1) * n + (c0 - 1);
    double out = 0.0;
    for (int a = 0; a < 4; ++a, p += n) {
      double acc = 0.0;
      acc = acc + wc[0] * double(p[0]);
      acc = acc + wc[1] * double(p[1]);
      acc = acc + wc[2] * double(p[2]);
      acc = acc + wc[3] * double(p[3]);
      out = out + wr[a] * acc;
    }
    return out;
  }
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

FORSE_HD double window_weight(int kind, const double* warr, int n, double inv_width, double r,
                              double c) {
  if (kind == kTaper) return taper_1d(r, n, inv_width) * taper_1d(c, n, inv_width);
  if (kind == kFlat) return 1.0;
  return bilinear(warr, n, r, c);
}

// Geometry half of a projected patch pixel (i, j) of patch frame f: the map pixels and weights
// (bilinear: 4 of each, healpy's get_interpol; nearest: p[0] only) and the direction v.
// rt: ring colatitude table (see Healpix::interpol_z).
FORSE_HD void project_weights(const Healpix<int64_t>& hb, const double* rt, const PatchFrame& f,
                              int i, int j, int npix, double d, bool nest, bool nearest,
                              int64_t p[4], double w[4], double v[3]) {
  const double c = 0.5 * double(npix - 1);
  const double x = (double(j) - c) * d, y = (c - double(i)) * d;
  double theta, phi;
  plane_to_vec(f, x, y, v);
  vec_to_ang(v, theta, phi);
  if (nearest) {
    p[0] = hb.ang2pix(theta, phi, nest);
    return;
  }
  // cos(theta) without a cos call: equal to it within an ulp, and the interpolation is
  // continuous across ring boundaries, so the value moves by rounding only.
  const double z = v[2] / ::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  hb.interpol_z(theta, z, phi, nest, rt, p, w);
}

// Value half: reads the k maps at (p, w) from project_weights and writes the patch pixel.
// maps: element (a, p) at maps[a * sk + p * sp]; o points at out[n, 0, i, j], maps `plane` apart.
template <typename T>
FORSE_HD void project_values(const T* maps, int64_t k, int64_t sk, int64_t sp, const int64_t p[4],
                             const double w[4], const double v[3], const PatchFrame& f,
                             bool nearest, bool pol, T* o, int64_t plane) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double vals[16];  // k <= 16 is checked by the bindings
  if (nearest) {
    for (int64_t a = 0; a < k; ++a) {
      const double m = double(maps[a * sk + p[0] * sp]);
      vals[a] = is_bad(m) ? nan : m;
    }
  } else {
    for (int64_t a = 0; a < k; ++a) {
      const T* ma = maps + a * sk;
      double s = 0.0;
      bool bad = false;
      for (int r = 0; r < 4; ++r) {  // same order as healpy's get_interp_val
        const double m = double(ma[p[r] * sp]);
        if (is_bad(m)) bad = bad || (w[r] != 0.0);
        else s += w[r] * m;
      }
      vals[a] = bad ? nan : s;
    }
  }
  if (pol) {
    const double rho = ::sqrt(v[0] * v[0] + v[1] * v[1]);
    const double r = ::sqrt(rho * rho + v[2] * v[2]);
    const bool axis = rho == 0.0;  // phi = 0 there, as in vec_to_ang
    double c2, s2;
    pol_rotation(f, v[2] / r, rho / r, axis ? 1.0 : v[0] / rho, axis ? 0.0 : v[1] / rho, c2, s2);
    rotate_qu(vals[k - 2], vals[k - 1], c2, s2, true);
  }
  for (int64_t a = 0; a < k; ++a) o[a * plane] = T(vals[a]);
}

// One projected patch pixel (i, j) for all k maps (the CUDA kernel's unit of work).
template <typename T>
FORSE_HD void project_pixel(const T* maps, int64_t k, int64_t sk, int64_t sp,
                            const Healpix<int64_t>& hb, const double* rt, const PatchFrame& f,
                            int i, int j, int npix, double d, bool nest, bool nearest, bool pol,
                            T* o, int64_t plane) {
  int64_t p[4];
  double w[4], v[3];
  project_weights(hb, rt, f, i, j, npix, d, nest, nearest, p, w, v);
  project_values(maps, k, sk, sp, p, w, v, f, nearest, pol, o, plane);
}

}  // namespace forse
