// Minkowski functionals on the CPU: OpenMP over (image, row-chunk) work items, each with its own
// accumulators, reduced in a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "forse/minkowski.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace forse {

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

struct RowBuffers {
  std::vector<int> ra, rb, cmin, cmax, cross;
  std::vector<double> ha, hb, vv;  // inverse horizontal edges (top, bottom row), vertical edges
  explicit RowBuffers(int64_t nx)
      : ra(nx), rb(nx), cmin(nx), cmax(nx), cross(nx), ha(nx), hb(nx), vv(nx) {}
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

// Cells of rows [row0, row1) of one image.
template <class T>
void chunk_cpu(const T* img, int64_t nx, int64_t row0, int64_t row1, const RankTable& rank,
               const double* u, int nT, const mink::Accum* acc, RowBuffers& b) {
  const int64_t ncol = nx - 1;
  const int nT_plus_one_sink = nT + 1;  // full_count slot for cells with a NaN corner
  ranks_and_edges(img + row0 * nx, nx, rank, b.ra.data(), b.ha.data());
  for (int64_t i = row0; i < row1; ++i) {
    const T* top = img + i * nx;
    const T* bot = top + nx;
    ranks_and_edges(bot, nx, rank, b.rb.data(), b.hb.data());
    const int* ra = b.ra.data();
    const int* rb = b.rb.data();
    // per column: min/max rank of the two rows (a NaN pixel, rank -1, makes the min negative)
    for (int64_t j = 0; j < nx; ++j) {
      b.cmin[j] = std::min(ra[j], rb[j]);
      b.cmax[j] = std::max(ra[j], rb[j]);
    }
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
  }
}

}  // namespace

template <class T>
void minkowski_cpu(const T* images, int64_t N, int64_t ny, int64_t nx, const double* u, int nT,
                   double* v0, double* v1, double* v2, int nthreads) {
  const int64_t cell_rows = ny - 1;
  // Split images into row chunks only when there are few of them; depends on shapes only.
  const int64_t rows_per_chunk = (N >= 16) ? cell_rows : std::min<int64_t>(cell_rows, 32);
  const int64_t nchunk = (cell_rows + rows_per_chunk - 1) / rows_per_chunk;
  const int64_t nitems = N * nchunk;
  const int64_t T1 = nT + 2;  // full_count: T+1 ranks and a sink for NaN cells
  const int64_t nacc = nitems * kBanks;  // accumulator sets, kBanks per work item
  std::vector<double> p0(nacc * nT, 0.0), p1(nacc * nT, 0.0);
  std::vector<int64_t> pe(nacc * T1, 0), pf(nacc * T1, 0);

  const RankTable rank(u, nT);
  int nt = nthreads > 0 ? nthreads : 1;
#ifdef _OPENMP
  if (nthreads <= 0) nt = omp_get_max_threads();
  if (omp_in_parallel()) nt = 1;  // no nested teams
#endif
  nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, nitems)));

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
        acc[q] = mink::Accum{p0.data() + a * nT, p1.data() + a * nT, pe.data() + a * T1,
                             pf.data() + a * T1};
      }
      chunk_cpu(images + n * ny * nx, nx, row0, row1, rank, u, nT, acc, buffers);
    }
  }

  for (int64_t n = 0; n < N; ++n) {
    double* o0 = v0 + n * nT;
    double* o1 = v1 + n * nT;
    double* o2 = v2 + n * nT;
    std::vector<int64_t> e4(T1, 0), full(T1, 0);
    for (int t = 0; t < nT; ++t) o0[t] = o1[t] = 0.0;
    for (int64_t k = 0; k < nchunk * kBanks; ++k) {  // fixed order
      const int64_t item = n * nchunk * kBanks + k;
      for (int t = 0; t < nT; ++t) {
        o0[t] += p0[item * nT + t];
        o1[t] += p1[item * nT + t];
      }
      for (int64_t t = 0; t < T1; ++t) {
        e4[t] += pe[item * T1 + t];
        full[t] += pf[item * T1 + t];
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

template void minkowski_cpu<float>(const float*, int64_t, int64_t, int64_t, const double*, int,
                                   double*, double*, double*, int);
template void minkowski_cpu<double>(const double*, int64_t, int64_t, int64_t, const double*, int,
                                    double*, double*, double*, int);

}  // namespace forse
