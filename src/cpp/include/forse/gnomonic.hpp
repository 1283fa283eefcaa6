// Gnomonic (FITS TAN) patch geometry shared by the CPU and CUDA kernels.
//
// Patch pixel (i, j) sits at plane coordinates x = (j - c) d, y = (c - i) d, c = (npix - 1) / 2;
// its direction is e_r + x e_lon + y e_lat (not normalized). The inverse maps a unit vector v
// with v.e_r > 0 to fractional (row, col) = (c - (v.e_lat / v.e_r) / d, c + (v.e_lon / v.e_r) / d).
#pragma once
#include "healpix.hpp"

namespace forse {

struct PatchFrame {
  double er[3], ee[3], en[3];  // centre, local east (increasing lon), local north
};

FORSE_HD PatchFrame make_frame(double lon_deg, double lat_deg) {
  const double lon = lon_deg * (kPi / 180.0), lat = lat_deg * (kPi / 180.0);
  const double cl = ::cos(lat), sl = ::sin(lat), co = ::cos(lon), so = ::sin(lon);
  PatchFrame f;
  f.er[0] = cl * co;
  f.er[1] = cl * so;
  f.er[2] = sl;
  f.ee[0] = -so;
  f.ee[1] = co;
  f.ee[2] = 0.0;
  f.en[0] = -sl * co;
  f.en[1] = -sl * so;
  f.en[2] = cl;
  return f;
}

FORSE_HD double dot3(const double* a, const double* b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

// Direction of the plane point (x, y), unnormalized.
FORSE_HD void plane_to_vec(const PatchFrame& f, double x, double y, double v[3]) {
  for (int a = 0; a < 3; ++a) v[a] = f.er[a] + x * f.ee[a] + y * f.en[a];
}

// atan(t) for t in [0, 1]: Cephes-style rational approximation (about 2e-16 relative), a
// few times faster than libm's correctly rounded atan2, which dominated the projection.
FORSE_HD double atan_unit(double t) {
  double base = 0.0, extra = 0.0;
  if (t > 0.66) {  // atan(t) = pi/4 + atan((t - 1) / (t + 1))
    base = 0.25 * kPi;
    extra = 0.5 * 6.123233995736765886130e-17;
    t = (t - 1.0) / (t + 1.0);
  }
  const double z = t * t;
  const double p = (((-8.750608600031904122785e-1 * z - 1.615753718733365076637e1) * z -
                     7.500855792314704667340e1) *
                        z -
                    1.228866684490136173410e2) *
                       z -
                   6.485021904942025371773e1;
  const double q = ((((z + 2.485846490142306297962e1) * z + 1.650270098316988542046e2) * z +
                     4.328810604912902668951e2) *
                        z +
                    4.853903996359136964868e2) *
                       z +
                   1.945506571482613964425e2;
  return base + ((t * (z * p / q) + t) + extra);
}

// atan2(y, x) to a few 1e-16 absolute, for finite arguments not both zero.
FORSE_HD double fast_atan2(double y, double x) {
  const double ax = ::fabs(x), ay = ::fabs(y);
  double a;
  if (ay <= ax) a = atan_unit(ay / ax);
  else a = kHalfPi - atan_unit(ax / ay);
  if (x < 0.0) a = kPi - a;
  return y < 0.0 ? -a : a;
}

// HEALPix (theta, phi) of a direction (not necessarily unit), phi in [0, 2 pi).
FORSE_HD void vec_to_ang(const double v[3], double& theta, double& phi) {
  const double rho = ::sqrt(v[0] * v[0] + v[1] * v[1]);
  theta = (rho == 0.0 && v[2] == 0.0) ? kHalfPi : fast_atan2(rho, v[2]);
  phi = (v[0] == 0.0 && v[1] == 0.0) ? 0.0 : fast_atan2(v[1], v[0]);
  if (phi < 0.0) phi += kTwoPi;
  if (phi >= kTwoPi) phi -= kTwoPi;
}

// Spin-2 rotation of a patch at a sky direction with (cos theta, sin theta, cos phi, sin phi):
// psi is the angle from local north to the patch's up direction (e_lat transported there),
// measured towards east, psi = atan2(east, north); returns cos 2psi and sin 2psi from the two
// components without any trigonometric call (they were most of the cost of Q/U patches).
FORSE_HD void pol_rotation(const PatchFrame& f, double ct, double st, double cp, double sp,
                           double& c2, double& s2) {
  const double north = -ct * cp * f.en[0] - ct * sp * f.en[1] + st * f.en[2];
  const double east = -sp * f.en[0] + cp * f.en[1];
  const double r2 = north * north + east * east;
  if (!(r2 > 0.0)) {  // not reached inside a patch (up is never radial); keep q, u
    c2 = 1.0;
    s2 = 0.0;
    return;
  }
  c2 = (north * north - east * east) / r2;
  s2 = 2.0 * north * east / r2;
}

// Rotate (q, u) by +2 psi (sky -> patch, forward) or -2 psi (patch -> sky): in the COSMO
// convention angles grow from north towards west, and the patch up direction is psi east of north.
FORSE_HD void rotate_qu(double& q, double& u, double c2, double s2, bool forward) {
  const double s = forward ? s2 : -s2;
  const double q2 = c2 * q - s * u, u2 = s * q + c2 * u;
  q = q2;
  u = u2;
}

}  // namespace forse
