// Minkowski functionals by marching squares: the per-cell pieces shared by the CPU and CUDA
// kernels. The definition lives in forse/minkowski.py (_functionals_numpy); read it first.
// The entry points are forse::cpu::minkowski (cpu_api.hpp) and forse::cuda::minkowski
// (cuda_api.hpp).
//
// A cell has four corners in cyclic order c[0]=(x0,y0), c[1]=(x1,y0), c[2]=(x1,y1), c[3]=(x0,y1)
// (x = column, y = row). Thresholds u are sorted ascending; the rank of a value v is the number
// of thresholds below it, so "corner above u[t]" (v > u[t]) is simply rank(v) > t. A cell with
// corner ranks lo = min, hi = max is entirely above the thresholds t < lo, entirely below those
// t >= hi, and only t in [lo, hi) cut it: the CPU kernel evaluates just those.
#pragma once

#include <cmath>
#include <cstdint>

#include "config.hpp"

namespace forse {
namespace mink {

// Corner triangle of corner k whose two neighbours are on the other side of u:
// area = 0.5 * d^2 * P, boundary length = d * G with d = |c[k] - u|.
struct Corner {
  double P, G;
};

FORSE_HD_FORCEINLINE Corner corner_terms(const double* c, int k) {
  const double e1 = 1.0 / (c[k] - c[(k + 1) & 3]);
  const double e2 = 1.0 / (c[k] - c[(k + 3) & 3]);
  return Corner{e1 * e2, sqrt(e1 * e1 + e2 * e2)};
}

// Area, length and 4*Euler of one cell at one threshold (the literal case analysis, used by
// the CUDA kernel; the CPU kernel uses the run form below and must agree with it).
struct CellValue {
  double area, length;
  int euler4;
};

FORSE_HD_FORCEINLINE CellValue cell_at(const double* c, double u) {
  int code = 0;
  for (int k = 0; k < 4; ++k) code |= (c[k] > u ? 1 : 0) << k;
  const int n = (code & 1) + ((code >> 1) & 1) + ((code >> 2) & 1) + ((code >> 3) & 1);
  CellValue r{0.0, 0.0, 0};
  if (n == 0) return r;
  if (n == 4) {
    r.area = 1.0;
    return r;
  }
  if (n == 1 || n == 3) {
    int k = 0;  // the lone corner
    for (int j = 0; j < 4; ++j)
      if (((code >> j) & 1) == (n == 1 ? 1 : 0)) k = j;
    const Corner q = corner_terms(c, k);
    const double d = fabs(c[k] - u);
    const double tri = 0.5 * d * d * q.P;
    r.area = (n == 1) ? tri : 1.0 - tri;
    r.length = d * q.G;
    r.euler4 = (n == 1) ? 1 : -1;
    return r;
  }
  if (code == 5 || code == 10) {  // saddle: corners k, k+2 above
    const int k = (code == 5) ? 0 : 1;
    const bool connected = 0.25 * (c[0] + c[1] + c[2] + c[3]) > u;
    const int a = connected ? k + 1 : k, b = connected ? (k + 3) & 3 : k + 2;
    const Corner qa = corner_terms(c, a), qb = corner_terms(c, b);
    const double da = fabs(c[a] - u), db = fabs(c[b] - u);
    const double tri = 0.5 * (da * da * qa.P + db * db * qb.P);
    r.area = connected ? 1.0 - tri : tri;
    r.length = da * qa.G + db * qb.G;
    r.euler4 = connected ? -2 : 2;
    return r;
  }
  int k = 0;  // adjacent pair k, k+1 above
  for (int j = 0; j < 4; ++j)
    if (((code >> j) & 1) && ((code >> ((j + 1) & 3)) & 1)) k = j;
  const int k1 = (k + 1) & 3;
  const double d1 = (c[k] - u) / (c[k] - c[(k + 3) & 3]);
  const double d2 = (c[k1] - u) / (c[k1] - c[(k + 2) & 3]);
  r.area = 0.5 * (d1 + d2);
  r.length = sqrt(1.0 + (d1 - d2) * (d1 - d2));
  return r;
}

// Per-chunk accumulators for T thresholds: v0, v1 (T+1 entries) and 4*v2 (exact integer, T+2)
// of the crossed cells, and full_count[lo] (T+2): cells entirely above the thresholds t < lo.
// Index T of v0/v1/euler4 is a sink for SIMD lanes without a threshold, T+1 of full_count one
// for cells with a NaN corner.
struct Accum {
  double* v0;
  double* v1;
  int64_t* euler4;
  int64_t* full_count;
};

// Case tables by corner code (bit k set when corner k is above), packed 2 bits per code:
// kind 0 = one corner above, 1 = one corner below, 2 = adjacent pair k, k+1 above, 3 = saddle
// (codes 0 and 15 never reach them); corner = that k.
FORSE_HD_FORCEINLINE int case_kind(int code) {
  return static_cast<int>((0x16786C80u >> (2 * code)) & 3u);
}
FORSE_HD_FORCEINLINE int case_corner(int code) {
  return static_cast<int>((0x069FD210u >> (2 * code)) & 3u);
}

// Edge-inverse form of cell_at for thresholds t in [lo, hi) of one cell (not all corners on one
// side). c: corner values, r: corner ranks, E[k] = 1 / (c[k] - c[k+1]) (edge inverses shared
// with neighbouring cells; entries unused by a case may be inf). The corner triangle of corner k
// has area h d^2 and length g |d| with d = c[k] - u, h = -E[k] E[k-1] / 2,
// g = hypot(E[k], E[k-1]). Branch-free except for the rare saddle.
inline void cell_steps(const double* c, const int* r, const double* E, const double* u, int lo,
                       int hi, const Accum& acc) {
  double* v0 = acc.v0;
  double* v1 = acc.v1;
  int64_t* e4 = acc.euler4;
  for (int t = lo; t < hi; ++t) {
    const int code = (r[0] > t) | ((r[1] > t) << 1) | ((r[2] > t) << 2) | ((r[3] > t) << 3);
    const int kind = case_kind(code);
    const double ut = u[t];
    double area, len;
    if (kind == 3) {  // saddle: resolved by the cell mean
      const CellValue v = cell_at(c, ut);
      area = v.area;
      len = v.length;
      e4[t] += v.euler4;
    } else {
      const int k = case_corner(code), km = (k + 3) & 3, kp = (k + 1) & 3;
      const double ek = E[k], em = E[km];
      const double d = c[k] - ut;
      const double a1 = -d * em, a2 = (c[kp] - ut) * E[kp], dd = a1 - a2;
      const bool adj = kind == 2;
      const double sq = sqrt(adj ? 1.0 + dd * dd : ek * ek + em * em);
      const double tri = -0.5 * ek * em * d * d;
      area = adj ? 0.5 * (a1 + a2) : (kind == 0 ? tri : 1.0 - tri);
      len = adj ? sq : sq * fabs(d);
      e4[t] += (kind == 0) - (kind == 1);
    }
    v0[t] += area;
    v1[t] += len;
  }
}

}  // namespace mink
}  // namespace forse
