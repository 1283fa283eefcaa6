// HEALPix pixel geometry, header-only and templated on the pixel index type.
//
// Written to reproduce healpy / Healpix C++ (healpix_base) bit for bit: the same formulas for
// ang2pix (loc2pix), pix2ang (pix2loc, atan2 near the poles), ring info and get_interpol, so
// pixel indices are identical and weights/angles agree to rounding. All functions are usable
// from CUDA device code too (FORSE_HD).
#pragma once
#include <cmath>
#include <cstdint>

#include "config.hpp"

namespace forse {

constexpr double kPi = 3.141592653589793238462643383279502884197;
constexpr double kTwoPi = 6.283185307179586476925286766559005768394;
constexpr double kHalfPi = 1.570796326794896619231321691639751442099;
constexpr double kInvHalfPi = 0.6366197723675813430755350534900574;
constexpr double kTwoThird = 2.0 / 3.0;

// Spread the low 32 bits of v to the even bit positions (Morton order).
FORSE_HD uint64_t spread_bits(uint64_t v) {
  v &= 0xffffffffULL;
  v = (v | (v << 16)) & 0x0000ffff0000ffffULL;
  v = (v | (v << 8)) & 0x00ff00ff00ff00ffULL;
  v = (v | (v << 4)) & 0x0f0f0f0f0f0f0f0fULL;
  v = (v | (v << 2)) & 0x3333333333333333ULL;
  v = (v | (v << 1)) & 0x5555555555555555ULL;
  return v;
}

// Inverse of spread_bits: gather the even bits.
FORSE_HD uint64_t compress_bits(uint64_t v) {
  v &= 0x5555555555555555ULL;
  v = (v | (v >> 1)) & 0x3333333333333333ULL;
  v = (v | (v >> 2)) & 0x0f0f0f0f0f0f0f0fULL;
  v = (v | (v >> 4)) & 0x00ff00ff00ff00ffULL;
  v = (v | (v >> 8)) & 0x0000ffff0000ffffULL;
  v = (v | (v >> 16)) & 0x00000000ffffffffULL;
  return v;
}

// fmod into [0, v2) the way Healpix's fmodulo does it.
FORSE_HD double fmodulo(double v1, double v2) {
  if (v1 >= 0) return (v1 < v2) ? v1 : ::fmod(v1, v2);
  double tmp = ::fmod(v1, v2) + v2;
  return (tmp == v2) ? 0.0 : tmp;
}

template <typename I>
FORSE_HD I isqrt(I arg) {
  I res = I(::sqrt(double(arg) + 0.5));
  if (arg < (I(1) << 50)) return res;
  if (res * res > arg) --res;
  else if ((res + 1) * (res + 1) <= arg) ++res;
  return res;
}

struct RingInfo {
  int64_t start;  // first pixel (RING)
  int64_t npix;   // pixels in the ring
  double theta;   // colatitude
  bool shifted;   // pixel centres at (i + 1/2) * 2 pi / npix instead of i * 2 pi / npix
};

template <typename I = int64_t>
struct Healpix {
  I nside, order, npix, ncap, npface;
  double fact1, fact2;

  FORSE_HD explicit Healpix(I nside_) : nside(nside_) {
    order = 0;
    while ((I(1) << order) < nside) ++order;
    npface = nside * nside;
    npix = 12 * npface;
    ncap = (npface - nside) << 1;
    fact2 = 4.0 / double(npix);
    fact1 = double(nside << 1) * fact2;
  }

  FORSE_HD static int jrll(int f) { return (f >> 2) + 2; }  // {2,2,2,2,3,3,3,3,4,4,4,4}
  FORSE_HD static int jpll(int f) {
    return ((f & 3) << 1) + ((f >> 2) == 1 ? 0 : 1);
  }  // {1,3,5,7,0,2,4,6,1,3,5,7}

  FORSE_HD I xyf2nest(I ix, I iy, int face) const {
    return (I(face) << (2 * order)) +
           I(spread_bits(uint64_t(ix)) | (spread_bits(uint64_t(iy)) << 1));
  }
  FORSE_HD void nest2xyf(I pix, I& ix, I& iy, int& face) const {
    face = int(pix >> (2 * order));
    pix &= (npface - 1);
    ix = I(compress_bits(uint64_t(pix)));
    iy = I(compress_bits(uint64_t(pix) >> 1));
  }

  // Ring number, pixels, first pixel and shift of a ring (1 .. 4 nside - 1), no angles.
  FORSE_HD void ring_info_small(I ring, I& startpix, I& ringpix, bool& shifted) const {
    if (ring < nside) {
      shifted = true;
      ringpix = 4 * ring;
      startpix = 2 * ring * (ring - 1);
    } else if (ring < 3 * nside) {
      shifted = ((ring - nside) & 1) == 0;
      ringpix = 4 * nside;
      startpix = ncap + (ring - nside) * ringpix;
    } else {
      shifted = true;
      I nr = 4 * nside - ring;
      ringpix = 4 * nr;
      startpix = npix - 2 * nr * (nr + 1);
    }
  }

  // Same as Healpix's get_ring_info2 (theta computed the same way).
  FORSE_HD void ring_info(I ring, I& startpix, I& ringpix, double& theta, bool& shifted) const {
    I northring = (ring > 2 * nside) ? 4 * nside - ring : ring;
    if (northring < nside) {
      double tmp = double(northring * northring) * fact2;
      double costheta = 1 - tmp;
      double sintheta = ::sqrt(tmp * (2 - tmp));
      theta = ::atan2(sintheta, costheta);
      ringpix = 4 * northring;
      shifted = true;
      startpix = 2 * northring * (northring - 1);
    } else {
      theta = ::acos(double(2 * nside - northring) * fact1);
      ringpix = 4 * nside;
      shifted = ((northring - nside) & 1) == 0;
      startpix = ncap + (northring - nside) * ringpix;
    }
    if (northring != ring) {
      theta = kPi - theta;
      startpix = npix - startpix - ringpix;
    }
  }

  FORSE_HD RingInfo ring(I r) const {
    I s, n;
    double th;
    bool sh;
    ring_info(r, s, n, th, sh);
    return RingInfo{int64_t(s), int64_t(n), th, sh};
  }

  // z = cos(theta) of ring r and, near the poles, sin(theta) computed without cancellation.
  FORSE_HD void ring_z(I r, double& z, double& sth) const {
    I northring = (r > 2 * nside) ? 4 * nside - r : r;
    if (northring < nside) {
      double tmp = double(northring * northring) * fact2;
      z = 1 - tmp;
      sth = ::sqrt(tmp * (2 - tmp));
    } else {
      z = double(2 * nside - northring) * fact1;
      sth = ::sqrt((1 - z) * (1 + z));
    }
    if (northring != r) z = -z;
  }

  // Ring number (1 .. 4 nside - 1) of a RING pixel index.
  FORSE_HD I pix2ring(I pix) const {
    if (pix < ncap) return (1 + isqrt(1 + 2 * pix)) >> 1;
    if (pix < npix - ncap) return (pix - ncap) / (4 * nside) + nside;
    return 4 * nside - ((1 + isqrt(2 * (npix - pix) - 1)) >> 1);
  }

  FORSE_HD I ring_above(double z) const {
    double az = ::fabs(z);
    if (az <= kTwoThird) return I(double(nside) * (2 - 1.5 * z));
    I iring = I(double(nside) * ::sqrt(3 * (1 - az)));
    return (z > 0) ? iring : 4 * nside - iring - 1;
  }

  // Healpix's loc2pix.
  FORSE_HD I loc2pix(double z, double phi, double sth, bool have_sth, bool nest) const {
    double za = ::fabs(z);
    double tt = fmodulo(phi * kInvHalfPi, 4.0);
    if (!nest) {
      if (za <= kTwoThird) {
        I nl4 = 4 * nside;
        double temp1 = double(nside) * (0.5 + tt);
        double temp2 = double(nside) * z * 0.75;
        I jp = I(temp1 - temp2);
        I jm = I(temp1 + temp2);
        I ir = nside + 1 + jp - jm;
        I kshift = 1 - (ir & 1);
        I t1 = jp + jm - nside + kshift + 1 + nl4 + nl4;
        I ip = (t1 >> 1) & (nl4 - 1);
        return ncap + (ir - 1) * nl4 + ip;
      }
      double tp = tt - double(I(tt));
      double tmp = ((za < 0.99) || (!have_sth)) ? double(nside) * ::sqrt(3 * (1 - za))
                                                : double(nside) * sth / ::sqrt((1. + za) / 3.);
      I jp = I(tp * tmp);
      I jm = I((1.0 - tp) * tmp);
      I ir = jp + jm + 1;
      I ip = I(tt * double(ir));
      return (z > 0) ? 2 * ir * (ir - 1) + ip : npix - 2 * ir * (ir + 1) + ip;
    }
    if (za <= kTwoThird) {
      double temp1 = double(nside) * (0.5 + tt);
      double temp2 = double(nside) * (z * 0.75);
      I jp = I(temp1 - temp2);
      I jm = I(temp1 + temp2);
      I ifp = jp >> order;
      I ifm = jm >> order;
      int face = int((ifp == ifm) ? (ifp | 4) : ((ifp < ifm) ? ifp : (ifm + 8)));
      I ix = jm & (nside - 1);
      I iy = nside - (jp & (nside - 1)) - 1;
      return xyf2nest(ix, iy, face);
    }
    int ntt = int(tt) < 3 ? int(tt) : 3;
    double tp = tt - ntt;
    double tmp = ((za < 0.99) || (!have_sth)) ? double(nside) * ::sqrt(3 * (1 - za))
                                              : double(nside) * sth / ::sqrt((1. + za) / 3.);
    I jp = I(tp * tmp);
    I jm = I((1.0 - tp) * tmp);
    if (jp > nside - 1) jp = nside - 1;
    if (jm > nside - 1) jm = nside - 1;
    return (z >= 0) ? xyf2nest(nside - jm - 1, nside - jp - 1, ntt) : xyf2nest(jp, jm, ntt + 8);
  }

  FORSE_HD I ang2pix(double theta, double phi, bool nest) const {
    bool have_sth = (theta < 0.01) || (theta > 3.14159 - 0.01);
    return loc2pix(::cos(theta), phi, ::sin(theta), have_sth, nest);
  }

  // Healpix's pix2loc followed by pix2ang.
  FORSE_HD void pix2ang(I pix, bool nest, double& theta, double& phi) const {
    double z, sth = 0;
    bool have_sth = false;
    if (!nest) {
      if (pix < ncap) {
        I iring = (1 + isqrt(1 + 2 * pix)) >> 1;
        I iphi = (pix + 1) - 2 * iring * (iring - 1);
        double tmp = double(iring * iring) * fact2;
        z = 1.0 - tmp;
        if (z > 0.99) {
          sth = ::sqrt(tmp * (2.0 - tmp));
          have_sth = true;
        }
        phi = (double(iphi) - 0.5) * kHalfPi / double(iring);
      } else if (pix < (npix - ncap)) {
        I nl4 = 4 * nside;
        I ip = pix - ncap;
        I tmp = ip >> (order + 2);
        I iring = tmp + nside, iphi = ip - nl4 * tmp + 1;
        double fodd = ((iring + nside) & 1) ? 1 : 0.5;
        z = double(2 * nside - iring) * fact1;
        phi = (double(iphi) - fodd) * kPi * 0.75 * fact1;
      } else {
        I ip = npix - pix;
        I iring = (1 + isqrt(2 * ip - 1)) >> 1;
        I iphi = 4 * iring + 1 - (ip - 2 * iring * (iring - 1));
        double tmp = double(iring * iring) * fact2;
        z = tmp - 1.0;
        if (z < -0.99) {
          sth = ::sqrt(tmp * (2.0 - tmp));
          have_sth = true;
        }
        phi = (double(iphi) - 0.5) * kHalfPi / double(iring);
      }
    } else {
      int face;
      I ix, iy;
      nest2xyf(pix, ix, iy, face);
      I jr = (I(jrll(face)) << order) - ix - iy - 1;
      I nr;
      if (jr < nside) {
        nr = jr;
        double tmp = double(nr * nr) * fact2;
        z = 1 - tmp;
        if (z > 0.99) {
          sth = ::sqrt(tmp * (2.0 - tmp));
          have_sth = true;
        }
      } else if (jr > 3 * nside) {
        nr = nside * 4 - jr;
        double tmp = double(nr * nr) * fact2;
        z = tmp - 1;
        if (z < -0.99) {
          sth = ::sqrt(tmp * (2. - tmp));
          have_sth = true;
        }
      } else {
        nr = nside;
        z = double(2 * nside - jr) * fact1;
      }
      I tmp = I(jpll(face)) * nr + ix - iy;
      if (tmp < 0) tmp += 8 * nr;
      phi = (nr == nside) ? 0.75 * kHalfPi * double(tmp) * fact1
                          : (0.5 * kHalfPi * double(tmp)) / double(nr);
    }
    theta = have_sth ? ::atan2(sth, z) : ::acos(z);
  }

  FORSE_HD void ring2xyf(I pix, I& ix, I& iy, int& face) const {
    I iring, iphi, kshift, nr;
    I nl2 = 2 * nside;
    if (pix < ncap) {
      iring = (1 + isqrt(1 + 2 * pix)) >> 1;
      iphi = (pix + 1) - 2 * iring * (iring - 1);
      kshift = 0;
      nr = iring;
      face = int((iphi - 1) / nr);
    } else if (pix < (npix - ncap)) {
      I ip = pix - ncap;
      I tmp = ip >> (order + 2);
      iring = tmp + nside;
      iphi = ip - tmp * 4 * nside + 1;
      kshift = (iring + nside) & 1;
      nr = nside;
      I ire = tmp + 1, irm = nl2 + 2 - ire;
      I ifm = (iphi - (ire >> 1) + nside - 1) >> order;
      I ifp = (iphi - (irm >> 1) + nside - 1) >> order;
      face = int((ifp == ifm) ? (ifp | 4) : ((ifp < ifm) ? ifp : (ifm + 8)));
    } else {
      I ip = npix - pix;
      iring = (1 + isqrt(2 * ip - 1)) >> 1;
      iphi = 4 * iring + 1 - (ip - 2 * iring * (iring - 1));
      kshift = 0;
      nr = iring;
      iring = 2 * nl2 - iring;
      face = int((iphi - 1) / nr) + 8;
    }
    I irt = iring - ((2 + (face >> 2)) * nside) + 1;
    I ipt = 2 * iphi - I(jpll(face)) * nr - kshift - 1;
    if (ipt >= nl2) ipt -= 8 * nside;
    ix = (ipt - irt) >> 1;
    iy = (-ipt - irt) >> 1;
  }

  FORSE_HD I xyf2ring(I ix, I iy, int face) const {
    I nl4 = 4 * nside;
    I jr = (I(jrll(face)) * nside) - ix - iy - 1;
    I n_before, nr;
    bool shifted;
    ring_info_small(jr, n_before, nr, shifted);
    nr >>= 2;
    I kshift = 1 - (shifted ? 1 : 0);
    I jp = (I(jpll(face)) * nr + ix - iy + 1 + kshift) / 2;
    if (jp < 1) jp += nl4;
    return n_before + jp - 1;
  }

  FORSE_HD I ring2nest(I pix) const {
    I ix, iy;
    int face;
    ring2xyf(pix, ix, iy, face);
    return xyf2nest(ix, iy, face);
  }
  FORSE_HD I nest2ring(I pix) const {
    I ix, iy;
    int face;
    nest2xyf(pix, ix, iy, face);
    return xyf2ring(ix, iy, face);
  }

  // Healpix's get_interpol: the 4 pixels (RING, or NEST if nest) and bilinear weights of
  // (theta, phi), theta in [0, pi], phi in [0, 2 pi).
  FORSE_HD void interpol(double theta, double phi, bool nest, I pix[4], double wgt[4]) const {
    interpol_z(theta, ::cos(theta), phi, nest, nullptr, pix, wgt);
  }

  // Same with z = cos(theta) given and, optionally, a table of the ring colatitudes
  // (ring_theta[r] == ring_info(r).theta, r = 1 .. 4 nside - 1) to skip the acos/atan2 calls.
  FORSE_HD void interpol_z(double theta, double z, double phi, bool nest, const double* ring_theta,
                           I pix[4], double wgt[4]) const {
    I ir1 = ring_above(z);
    I ir2 = ir1 + 1;
    double theta1 = 0, theta2 = 0;
    I sp, nr;
    bool shift;
    if (ir1 > 0) {
      if (ring_theta) {
        ring_info_small(ir1, sp, nr, shift);
        theta1 = ring_theta[ir1];
      } else {
        ring_info(ir1, sp, nr, theta1, shift);
      }
      ring_pair(phi, sp, nr, shift, pix[0], pix[1], wgt[0], wgt[1]);
    }
    if (ir2 < (4 * nside)) {
      if (ring_theta) {
        ring_info_small(ir2, sp, nr, shift);
        theta2 = ring_theta[ir2];
      } else {
        ring_info(ir2, sp, nr, theta2, shift);
      }
      ring_pair(phi, sp, nr, shift, pix[2], pix[3], wgt[2], wgt[3]);
    }
    if (ir1 == 0) {
      double wtheta = theta / theta2;
      wgt[2] *= wtheta;
      wgt[3] *= wtheta;
      double fac = (1 - wtheta) * 0.25;
      wgt[0] = fac;
      wgt[1] = fac;
      wgt[2] += fac;
      wgt[3] += fac;
      pix[0] = (pix[2] + 2) & 3;
      pix[1] = (pix[3] + 2) & 3;
    } else if (ir2 == 4 * nside) {
      double wtheta = (theta - theta1) / (kPi - theta1);
      wgt[0] *= (1 - wtheta);
      wgt[1] *= (1 - wtheta);
      double fac = wtheta * 0.25;
      wgt[0] += fac;
      wgt[1] += fac;
      wgt[2] = fac;
      wgt[3] = fac;
      pix[2] = ((pix[0] + 2) & 3) + npix - 4;
      pix[3] = ((pix[1] + 2) & 3) + npix - 4;
    } else {
      double wtheta = (theta - theta1) / (theta2 - theta1);
      wgt[0] *= (1 - wtheta);
      wgt[1] *= (1 - wtheta);
      wgt[2] *= wtheta;
      wgt[3] *= wtheta;
    }
    if (nest)
      for (int m = 0; m < 4; ++m) pix[m] = ring2nest(pix[m]);
  }

  // The two pixels of a ring that bracket phi, and their weights.
  FORSE_HD static void ring_pair(double phi, I sp, I nr, bool shift, I& p1, I& p2, double& w0,
                                 double& w1) {
    double dphi = kTwoPi / double(nr);
    double tmp = (phi / dphi - .5 * (shift ? 1 : 0));
    I i1 = (tmp < 0) ? I(tmp) - 1 : I(tmp);
    double w = (phi - (double(i1) + .5 * (shift ? 1 : 0)) * dphi) / dphi;
    I i2 = i1 + 1;
    if (i1 < 0) i1 += nr;
    if (i2 >= nr) i2 -= nr;
    p1 = sp + i1;
    p2 = sp + i2;
    w0 = 1 - w;
    w1 = w;
  }
};

}  // namespace forse
