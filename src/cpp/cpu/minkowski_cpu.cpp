// Minkowski functionals on the CPU: OpenMP over (image, row-chunk) work items, each with its own
// accumulators, reduced in a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "forse/config.hpp"
#include "forse/cpu_api.hpp"
#include "forse/minkowski.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FORSE_MINK_AVX2 1  // AVX2 slot kernel, chosen at run time (no -march flags needed)
#include <immintrin.h>
#else
#define FORSE_MINK_AVX2 0
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace forse::cpu {

namespace {

// rank_of by table look-up. bucket(v) = clamp(floor((v - u0) / w), 0, B-1) is monotone in v even
// in floating point, so every threshold in a lower bucket is < v and every one in a higher
// bucket is > v: rank(v) = G[b] (thresholds in lower buckets) + comparisons with the K at most
// thresholds sharing v's bucket (K = 1 for evenly spread thresholds, up to T if clustered).
struct RankTable {
  std::vector<double> upad;  // thresholds followed by K copies of +inf
  std::vector<int> G;
  int B = 1, K = 0;
  double u0 = 0.0, inv_w = 0.0;

  int bucket(double v) const {
    const double x = (v - u0) * inv_w;
    return x <= 0.0 ? 0 : (x >= B - 1 ? B - 1 : static_cast<int>(x));
  }

  RankTable(const double* u, int T) {
    u0 = u[0];
    const double span = u[T - 1] - u[0];
    B = span > 0 ? std::min(1 << 16, 4 * T) : 1;
    inv_w = span > 0 ? B / span : 0.0;
    std::vector<int> count(B, 0);
    for (int t = 0; t < T; ++t) count[bucket(u[t])] += 1;
    G.assign(B, 0);
    for (int b = 1; b < B; ++b) G[b] = G[b - 1] + count[b - 1];
    K = *std::max_element(count.begin(), count.end());
    upad.assign(u, u + T);
    upad.resize(T + K + 1, std::numeric_limits<double>::infinity());
  }

  int operator()(double v) const {
    if (!(v - v == 0.0)) return -1;  // NaN or inf
    const int g = G[bucket(v)];
    const double* p = upad.data() + g;
    int n = p[0] < v ? 1 : 0;
    for (int k = 1; k < K; ++k) n += p[k] < v ? 1 : 0;
    return g + n;
  }
};

constexpr int kBanks = 4;  // accumulator banks per work item (power of two)

constexpr int kPad = 8;  // zero padding after each row buffer: 4-wide loads run past the end

struct RowBuffers {
  std::vector<int> ra, rb, cmin, cmax, cross, lo, hi;
  std::vector<double> ha, hb, vv;  // inverse horizontal edges (top, bottom row), vertical edges
  std::vector<double> da, db;      // the two rows as float64 (SIMD path)
  explicit RowBuffers(int64_t nx)
      : ra(nx + kPad), rb(nx + kPad), cmin(nx + kPad), cmax(nx + kPad), cross(nx + kPad),
        lo(nx + kPad), hi(nx + kPad), ha(nx + kPad), hb(nx + kPad), vv(nx + kPad), da(nx + kPad),
        db(nx + kPad) {}
};

template <class T>
void ranks_and_edges(const T* row, int64_t nx, const RankTable& rank, int* r, double* h) {
  for (int64_t j = 0; j < nx; ++j) r[j] = rank(static_cast<double>(row[j]));
  for (int64_t j = 0; j + 1 < nx; ++j)
    h[j] = 1.0 / (static_cast<double>(row[j + 1]) - static_cast<double>(row[j]));
}

template <class T>
void vertical_edges(const T* top, const T* bot, int64_t nx, double* v) {
  for (int64_t j = 0; j < nx; ++j)
    v[j] = 1.0 / (static_cast<double>(bot[j]) - static_cast<double>(top[j]));
}


#if FORSE_MINK_AVX2
// One threshold slot s of one cell row, four cells per step: for cell j the threshold
// t = lo[j] + s (valid when t < hi[j]). Writes area, length and 4*Euler of non-saddle cells to
// b.area/len/euler; invalid and saddle lanes are handled by the caller. Same formulas as
// cell_steps, arranged without a per-cell corner index: the lone corner (both neighbours on the
// other side) is picked with blends, and the adjacent-pair case uses the two crossed opposite
// edges measured from corner 0's side.
// Sums go straight into the banked accumulators (lane q of a group of four uses bank q):
// sum0/sum1 with stride T0 = T+1, eul4 with stride T1 = T+2, slot T the sink for invalid lanes.
// Saddle cells are not added; their indices are appended to `saddles` (returns how many).
__attribute__((target("avx2"))) int64_t slot_avx2(RowBuffers& b, int64_t ncol, int s,
                                                  const double* upad, int nT, double* sum0,
                                                  double* sum1, int64_t* eul4, int* saddles) {
  const int64_t T0 = nT + 1, T1 = nT + 2;
  int64_t nsaddle = 0;
  alignas(32) double ar[4], ln[4], eu[4];
  alignas(16) int idx[4];
  const __m256d one = _mm256_set1_pd(1.0), half = _mm256_set1_pd(0.5);
  const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  const __m128i vs = _mm_set1_epi32(s), vmax = _mm_set1_epi32(nT);
  const double *top = b.da.data(), *bot = b.db.data();
  for (int64_t j = 0; j < ncol; j += 4) {
    const __m128i vt =
        _mm_add_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&b.lo[j])), vs);
    const __m128i valid =
        _mm_cmpgt_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&b.hi[j])), vt);
    const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&b.ra[j]));
    const __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&b.ra[j + 1]));
    const __m128i r2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&b.rb[j + 1]));
    const __m128i r3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&b.rb[j]));
    const __m256d a0 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpgt_epi32(r0, vt)));
    const __m256d a1 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpgt_epi32(r1, vt)));
    const __m256d a2 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpgt_epi32(r2, vt)));
    const __m256d a3 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpgt_epi32(r3, vt)));
    const __m256d ut = _mm256_i32gather_pd(upad, _mm_min_epi32(vt, vmax), 8);
    const __m256d c0 = _mm256_loadu_pd(top + j), c1 = _mm256_loadu_pd(top + j + 1);
    const __m256d c2 = _mm256_loadu_pd(bot + j + 1), c3 = _mm256_loadu_pd(bot + j);
    const __m256d zero = _mm256_setzero_pd();
    const __m256d E0 = _mm256_sub_pd(zero, _mm256_loadu_pd(&b.ha[j]));
    const __m256d E1 = _mm256_sub_pd(zero, _mm256_loadu_pd(&b.vv[j + 1]));
    const __m256d E2 = _mm256_loadu_pd(&b.hb[j]);
    const __m256d E3 = _mm256_loadu_pd(&b.vv[j]);
    // crossed edges X_k (corner k to k+1) and isolated corners I_k = X_k & X_{k-1}
    const __m256d X0 = _mm256_xor_pd(a0, a1), X1 = _mm256_xor_pd(a1, a2);
    const __m256d X2 = _mm256_xor_pd(a2, a3), X3 = _mm256_xor_pd(a3, a0);
    const __m256d I0 = _mm256_and_pd(X0, X3), I1 = _mm256_and_pd(X1, X0);
    const __m256d I2 = _mm256_and_pd(X2, X1), I3 = _mm256_and_pd(X3, X2);
    const __m256d iso = _mm256_or_pd(_mm256_or_pd(I0, I1), _mm256_or_pd(I2, I3));
    // lone corner k: c[k], E[k], E[k-1], above_k
    __m256d ck = c0, ek = E0, em = E3, ak = a0;
    ck = _mm256_blendv_pd(ck, c1, I1);
    ek = _mm256_blendv_pd(ek, E1, I1);
    em = _mm256_blendv_pd(em, E0, I1);
    ak = _mm256_blendv_pd(ak, a1, I1);
    ck = _mm256_blendv_pd(ck, c2, I2);
    ek = _mm256_blendv_pd(ek, E2, I2);
    em = _mm256_blendv_pd(em, E1, I2);
    ak = _mm256_blendv_pd(ak, a2, I2);
    ck = _mm256_blendv_pd(ck, c3, I3);
    ek = _mm256_blendv_pd(ek, E3, I3);
    em = _mm256_blendv_pd(em, E2, I3);
    ak = _mm256_blendv_pd(ak, a3, I3);
    const __m256d d = _mm256_sub_pd(ck, ut);
    const __m256d tri = _mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(half, ek), em),
                                      _mm256_mul_pd(d, d));  // = -area of the corner triangle
    // adjacent pair: crossed edges 1 and 3 (p from corner 0 to 3, q from corner 1 to 2) or
    // 0 and 2 (p from corner 0 to 1, q from corner 3 to 2); m = (p + q) / 2 is the area on
    // corner 0's side
    const __m256d p13 = _mm256_mul_pd(_mm256_sub_pd(ut, c0), E3);
    const __m256d q13 = _mm256_mul_pd(_mm256_sub_pd(c1, ut), E1);
    const __m256d p02 = _mm256_mul_pd(_mm256_sub_pd(c0, ut), E0);
    const __m256d q02 = _mm256_mul_pd(_mm256_sub_pd(ut, c3), E2);
    const __m256d p = _mm256_blendv_pd(p02, p13, X1), q = _mm256_blendv_pd(q02, q13, X1);
    const __m256d m = _mm256_mul_pd(half, _mm256_add_pd(p, q));
    const __m256d pq = _mm256_sub_pd(p, q);
    const __m256d arg =
        _mm256_blendv_pd(_mm256_add_pd(one, _mm256_mul_pd(pq, pq)),
                         _mm256_add_pd(_mm256_mul_pd(ek, ek), _mm256_mul_pd(em, em)), iso);
    const __m256d sq = _mm256_sqrt_pd(arg);
    const __m256d area_iso =
        _mm256_blendv_pd(_mm256_add_pd(one, tri), _mm256_sub_pd(zero, tri), ak);
    const __m256d area_adj = _mm256_blendv_pd(_mm256_sub_pd(one, m), m, a0);
    const __m256d area = _mm256_blendv_pd(area_adj, area_iso, iso);
    const __m256d len = _mm256_blendv_pd(sq, _mm256_mul_pd(sq, _mm256_and_pd(d, absmask)), iso);
    // +-1 for a lone corner, 0 for an adjacent pair, 2 marks a saddle (all corners isolated)
    __m256d eul = _mm256_and_pd(iso, _mm256_blendv_pd(_mm256_set1_pd(-1.0), one, ak));
    const __m256d saddle = _mm256_and_pd(I0, I2);  // all four corners isolated
    const __m128i saddle32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
        _mm256_castpd_si256(saddle), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)));
    // valid, non-saddle lanes add at t, the others at the sink slot T
    const __m128i use = _mm_andnot_si128(saddle32, valid);
    _mm_store_si128(reinterpret_cast<__m128i*>(idx), _mm_blendv_epi8(vmax, vt, use));
    _mm256_store_pd(ar, area);
    _mm256_store_pd(ln, len);
    _mm256_store_pd(eu, eul);
    for (int q = 0; q < 4; ++q) {
      sum0[q * T0 + idx[q]] += ar[q];
      sum1[q * T0 + idx[q]] += ln[q];
      eul4[q * T1 + idx[q]] += static_cast<int64_t>(eu[q]);
    }
    const int sad = _mm_movemask_ps(_mm_castsi128_ps(_mm_and_si128(saddle32, valid)));
    if (sad) {  // rare
      for (int q = 0; q < 4; ++q)
        if ((sad >> q) & 1) saddles[nsaddle++] = static_cast<int>(j + q);
    }
  }
  return nsaddle;
}


// rank of a float64 row, four pixels at a time (RankTable::operator() vectorized)
__attribute__((target("avx2"))) void ranks_avx2(const double* row, int64_t nx, const RankTable& rt,
                                                int* r) {
  const __m256d u0 = _mm256_set1_pd(rt.u0), inv_w = _mm256_set1_pd(rt.inv_w);
  const __m256d top = _mm256_set1_pd(static_cast<double>(rt.B - 1)), zero = _mm256_setzero_pd();
  const int* G = rt.G.data();
  const double* up = rt.upad.data();
  int64_t j = 0;
  for (; j + 4 <= nx; j += 4) {
    const __m256d v = _mm256_loadu_pd(row + j);
    const __m256d finite = _mm256_cmp_pd(_mm256_sub_pd(v, v), zero, _CMP_EQ_OQ);
    __m256d x = _mm256_mul_pd(_mm256_sub_pd(v, u0), inv_w);
    x = _mm256_min_pd(_mm256_max_pd(x, zero), top);  // NaN lanes: max(NaN, 0) = 0
    const __m128i bidx = _mm256_cvttpd_epi32(x);
    const __m128i g = _mm_i32gather_epi32(G, bidx, 4);
    __m128i n = g;
    for (int k = 0; k < rt.K; ++k) {
      const __m256d uk = _mm256_i32gather_pd(up + k, g, 8);
      const __m256d lt = _mm256_cmp_pd(uk, v, _CMP_LT_OQ);
      // -1 per true lane: subtract the mask packed to 32-bit lanes
      const __m128i m = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
          _mm256_castpd_si256(lt), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)));
      n = _mm_sub_epi32(n, m);
    }
    const __m128i fin = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
        _mm256_castpd_si256(finite), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)));
    n = _mm_blendv_epi8(_mm_set1_epi32(-1), n, fin);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(r + j), n);
  }
  for (; j < nx; ++j) r[j] = rt(row[j]);
}

__attribute__((target("avx2"))) void inverse_diff(const double* a, const double* b, int64_t n,
                                                  double* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = 1.0 / (b[j] - a[j]);
}

std::atomic<bool> simd_allowed{true};

bool use_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2");
  return ok && simd_allowed.load();
}
#else
std::atomic<bool> simd_allowed{true};
bool use_avx2() { return false; }
#endif

// Cells of rows [row0, row1) of one image.
template <class T>
void chunk_cpu(const T* img, int64_t nx, int64_t row0, int64_t row1, const RankTable& rank,
               const double* u, int nT, const mink::Accum* acc, RowBuffers& b) {
  const int64_t ncol = nx - 1;
  const int nT_plus_one_sink = nT + 1;  // full_count slot for cells with a NaN corner
  const bool simd = use_avx2();
  const double* upad = rank.upad.data();
  // ranks and horizontal edge inverses of a new row (SIMD path: also its float64 copy)
  auto new_row = [&](const T* row, int* r, double* h, double* d) {
#if FORSE_MINK_AVX2
    if (simd) {
      for (int64_t j = 0; j < nx; ++j) d[j] = static_cast<double>(row[j]);
      ranks_avx2(d, nx, rank, r);
      inverse_diff(d, d + 1, nx - 1, h);
      return;
    }
#endif
    (void)d;
    ranks_and_edges(row, nx, rank, r, h);
  };
  new_row(img + row0 * nx, b.ra.data(), b.ha.data(), b.da.data());
  for (int64_t i = row0; i < row1; ++i) {
    const T* top = img + i * nx;
    const T* bot = top + nx;
    new_row(bot, b.rb.data(), b.hb.data(), b.db.data());
    const int* ra = b.ra.data();
    const int* rb = b.rb.data();
    // per column: min/max rank of the two rows (a NaN pixel, rank -1, makes the min negative)
    for (int64_t j = 0; j < nx; ++j) {
      b.cmin[j] = std::min(ra[j], rb[j]);
      b.cmax[j] = std::max(ra[j], rb[j]);
    }
#if FORSE_MINK_AVX2
    if (simd) {
      inverse_diff(b.da.data(), b.db.data(), nx, b.vv.data());
      // Threshold slots s = 0, 1, ... (t = lo + s) four cells at a time while at least half
      // the cells of the row have that many crossings, the rest one cell at a time.
      // Banks are contiguous (stride T0 for v0/v1, T1 for the counts): flat indexing.
      double* sum0 = acc[0].v0;
      double* sum1 = acc[0].v1;
      int64_t* eul4 = acc[0].euler4;
      int64_t* full = acc[0].full_count;
      const int64_t T0 = nT + 1, T1 = nT + 2;
      constexpr int kMaxSlots = 8;
      int64_t spans[kMaxSlots + 1] = {0};
      for (int64_t j = 0; j < ncol; ++j) {
        const int lo = std::min(b.cmin[j], b.cmin[j + 1]);
        const int hi = std::max(b.cmax[j], b.cmax[j + 1]);
        const bool ok = lo >= 0;
        full[(j & (kBanks - 1)) * T1 + (ok ? lo : nT + 1)] += 1;
        b.lo[j] = ok ? lo : 0;
        b.hi[j] = ok ? hi : 0;
        spans[std::min(ok ? hi - lo : 0, kMaxSlots)] += 1;
      }
      int slots = 0;
      for (int64_t more = ncol - spans[0]; slots < kMaxSlots && 2 * more >= ncol; ++slots)
        more -= spans[slots + 1];  // cells with more than slots + 1 crossings
      for (int sl = 0; sl < slots; ++sl) {
        const int64_t nsad = slot_avx2(b, ncol, sl, upad, nT, sum0, sum1, eul4, b.cross.data());
        for (int64_t q = 0; q < nsad; ++q) {  // saddles: the literal case analysis
          const int64_t j = b.cross[q];
          const int t = b.lo[j] + sl;
          const int bank = static_cast<int>(j & (kBanks - 1));
          const double c[4] = {b.da[j], b.da[j + 1], b.db[j + 1], b.db[j]};
          const mink::CellValue v = mink::cell_at(c, u[t]);
          sum0[bank * T0 + t] += v.area;
          sum1[bank * T0 + t] += v.length;
          eul4[bank * T1 + t] += v.euler4;
        }
      }
      int64_t nrest = 0;
      for (int64_t j = 0; j < ncol; ++j) {
        b.cross[nrest] = static_cast<int>(j);
        nrest += b.hi[j] - b.lo[j] > slots;
      }
      for (int64_t q = 0; q < nrest; ++q) {
        const int64_t j = b.cross[q];
        const int bank = static_cast<int>(j & (kBanks - 1));
        const double c[4] = {b.da[j], b.da[j + 1], b.db[j + 1], b.db[j]};
        const int r[4] = {ra[j], ra[j + 1], rb[j + 1], rb[j]};
        const double E[4] = {-b.ha[j], -b.vv[j + 1], b.hb[j], b.vv[j]};
        mink::cell_steps(c, r, E, u, b.lo[j] + slots, b.hi[j], acc[bank]);
      }
      std::swap(b.ra, b.rb);
      std::swap(b.ha, b.hb);
      std::swap(b.da, b.db);
      continue;
    }
#endif
    vertical_edges(top, bot, nx, b.vv.data());
    // pass 1, branch-free: count cells entirely above (by their lowest rank) and list the
    // cells some threshold crosses; pass 2 works through the list only
    int64_t ncross = 0;
    for (int64_t j = 0; j < ncol; ++j) {
      const int lo = std::min(b.cmin[j], b.cmin[j + 1]);
      const int hi = std::max(b.cmax[j], b.cmax[j + 1]);
      // neighbouring cells add to different banks: no store-to-load chain through memory
      const int bank = static_cast<int>(j & (kBanks - 1));
      acc[bank].full_count[lo < 0 ? nT_plus_one_sink : lo] += 1;
      b.cross[ncross] = static_cast<int>(j);
      ncross += (lo >= 0) & (lo < hi);
    }
    for (int64_t q = 0; q < ncross; ++q) {
      const int64_t j = b.cross[q];
      const int lo = std::min(b.cmin[j], b.cmin[j + 1]);
      const int hi = std::max(b.cmax[j], b.cmax[j + 1]);
      const int bank = static_cast<int>(j & (kBanks - 1));
      const double c[4] = {static_cast<double>(top[j]), static_cast<double>(top[j + 1]),
                           static_cast<double>(bot[j + 1]), static_cast<double>(bot[j])};
      const int r[4] = {ra[j], ra[j + 1], rb[j + 1], rb[j]};
      const double E[4] = {-b.ha[j], -b.vv[j + 1], b.hb[j], b.vv[j]};
      mink::cell_steps(c, r, E, u, lo, hi, acc[bank]);
    }
    std::swap(b.ra, b.rb);
    std::swap(b.ha, b.hb);
    std::swap(b.da, b.db);
  }
}

}  // namespace

template <typename T>
void minkowski(const T* images, int64_t N, int64_t ny, int64_t nx, const double* u, int nT,
               double* v0, double* v1, double* v2, int nthreads) {
  const int64_t cell_rows = ny - 1;
  // Split images into row chunks only when there are few of them; depends on shapes only.
  const int64_t rows_per_chunk = (N >= 16) ? cell_rows : std::min<int64_t>(cell_rows, 32);
  const int64_t nchunk = (cell_rows + rows_per_chunk - 1) / rows_per_chunk;
  const int64_t T1 = nT + 2;  // full_count: T+1 ranks and a sink for NaN cells
  const int64_t T0 = nT + 1;  // v0/v1 (and euler4) get a sink slot for invalid SIMD lanes
  // images go in batches so that the partial sums stay small for any N
  const int64_t batch = std::min<int64_t>(N, 2048);
  const int64_t nacc_max = batch * nchunk * kBanks;  // accumulator sets, kBanks per work item
  std::vector<double> p0(nacc_max * T0), p1(nacc_max * T0);
  std::vector<int64_t> pe(nacc_max * T1), pf(nacc_max * T1);

  const RankTable rank(u, nT);
  int nt_req = thread_count(nthreads);
#ifdef _OPENMP
  if (omp_in_parallel()) nt_req = 1;  // no nested teams
#endif

  for (int64_t n0 = 0; n0 < N; n0 += batch) {
    const int64_t nb = std::min(batch, N - n0);
    const int64_t nitems = nb * nchunk;
    std::fill(p0.begin(), p0.end(), 0.0);
    std::fill(p1.begin(), p1.end(), 0.0);
    std::fill(pe.begin(), pe.end(), 0);
    std::fill(pf.begin(), pf.end(), 0);
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt_req, nitems)));

#pragma omp parallel num_threads(nt)
    {
      RowBuffers buffers(nx);
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < nitems; ++item) {
        const int64_t n = item / nchunk, k = item % nchunk;
        const int64_t row0 = k * rows_per_chunk;
        const int64_t row1 = std::min(cell_rows, row0 + rows_per_chunk);
        mink::Accum acc[kBanks];
        for (int q = 0; q < kBanks; ++q) {
          const int64_t a = item * kBanks + q;
          acc[q] = mink::Accum{p0.data() + a * T0, p1.data() + a * T0, pe.data() + a * T1,
                               pf.data() + a * T1};
        }
        chunk_cpu(images + (n0 + n) * ny * nx, nx, row0, row1, rank, u, nT, acc, buffers);
      }
    }

    for (int64_t n = 0; n < nb; ++n) {
      double* o0 = v0 + (n0 + n) * nT;
      double* o1 = v1 + (n0 + n) * nT;
      double* o2 = v2 + (n0 + n) * nT;
      std::vector<int64_t> e4(T1, 0), full(T1, 0);
      for (int t = 0; t < nT; ++t) o0[t] = o1[t] = 0.0;
      for (int64_t k = 0; k < nchunk * kBanks; ++k) {  // fixed order over chunks and banks
        const int64_t a = n * nchunk * kBanks + k;
        for (int t = 0; t < nT; ++t) {
          o0[t] += p0[a * T0 + t];
          o1[t] += p1[a * T0 + t];
        }
        for (int64_t t = 0; t < T1; ++t) {
          e4[t] += pe[a * T1 + t];
          full[t] += pf[a * T1 + t];
        }
      }
      // cells with lowest rank lo are entirely above every threshold t < lo
      int64_t above = 0;
      for (int t = nT - 1; t >= 0; --t) {
        above += full[t + 1];
        o0[t] += static_cast<double>(above);
      }
      for (int t = 0; t < nT; ++t) o2[t] = 0.25 * static_cast<double>(e4[t]);
    }
  }
}

bool minkowski_simd(int enable) {
  const bool had = use_avx2();
  if (enable >= 0) simd_allowed.store(enable != 0);
  return had;
}

template void minkowski<float>(const float*, int64_t, int64_t, int64_t, const double*, int, double*,
                               double*, double*, int);
template void minkowski<double>(const double*, int64_t, int64_t, int64_t, const double*, int,
                                double*, double*, double*, int);

}  // namespace forse::cpu
