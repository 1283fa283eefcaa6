// Minkowski functionals on the GPU. Deterministic: each block sums its tile of cells with a
// fixed warp-shuffle tree and a fixed order over warps, writes one partial per (image, tile,
// threshold), and a second kernel adds the tiles in order. No floating-point atomics.
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "check.cuh"
#include "forse/cuda_api.hpp"
#include "forse/minkowski.hpp"

namespace forse::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTileRows = 8;     // cell rows per block
constexpr int kGroup = 32;       // thresholds per shared-memory pass

int64_t tiles_of(int64_t ny) { return (ny - 1 + kTileRows - 1) / kTileRows; }

__device__ __forceinline__ double warp_sum(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// partial layout: [N][tiles][T][3] (v0, v1, 4*v2)
template <class T>
__global__ void partial_kernel(const T* __restrict__ images, int64_t ny, int64_t nx,
                               const double* __restrict__ u, int nT, double* __restrict__ partial,
                               int64_t tiles) {
  __shared__ double sm[kWarps][kGroup][3];
  const int64_t n = blockIdx.y, tile = blockIdx.x;
  const int64_t ncol = nx - 1;
  const int64_t row0 = tile * kTileRows;
  const int64_t rows = (ny - 1 - row0) < kTileRows ? (ny - 1 - row0) : kTileRows;
  const T* img = images + n * ny * nx;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  for (int g0 = 0; g0 < nT; g0 += kGroup) {
    const int gn = min(kGroup, nT - g0);
    for (int tg = 0; tg < gn; ++tg) {
      const double ut = u[g0 + tg];
      double a = 0.0, l = 0.0, e = 0.0;
      // rows of the tile, columns strided by the block: no integer division per cell
      for (int r = 0; r < static_cast<int>(rows); ++r) {
        const T* row = img + (row0 + r) * nx;
        for (int j = threadIdx.x; j < static_cast<int>(ncol); j += kThreads) {
          const T* top = row + j;
          const double c[4] = {static_cast<double>(top[0]), static_cast<double>(top[1]),
                               static_cast<double>(top[nx + 1]), static_cast<double>(top[nx])};
          if (!isfinite(c[0]) || !isfinite(c[1]) || !isfinite(c[2]) || !isfinite(c[3])) continue;
          const mink::CellValue v = mink::cell_at(c, ut);
          a += v.area;
          l += v.length;
          e += static_cast<double>(v.euler4);
        }
      }
      a = warp_sum(a);
      l = warp_sum(l);
      e = warp_sum(e);
      if (lane == 0) {
        sm[warp][tg][0] = a;
        sm[warp][tg][1] = l;
        sm[warp][tg][2] = e;
      }
    }
    __syncthreads();
    if (threadIdx.x < gn * 3) {
      const int tg = threadIdx.x / 3, q = threadIdx.x % 3;
      double s = 0.0;
      for (int w = 0; w < kWarps; ++w) s += sm[w][tg][q];  // fixed order
      partial[((n * tiles + tile) * nT + g0 + tg) * 3 + q] = s;
    }
    __syncthreads();
  }
}

__global__ void finish_kernel(const double* __restrict__ partial, int64_t N, int64_t tiles, int nT,
                              double* __restrict__ out) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= N * nT) return;
  const int64_t n = idx / nT, t = idx % nT;
  double s[3] = {0.0, 0.0, 0.0};
  for (int64_t k = 0; k < tiles; ++k)  // fixed order
    for (int q = 0; q < 3; ++q) s[q] += partial[((n * tiles + k) * nT + t) * 3 + q];
  out[idx] = s[0];
  out[N * nT + idx] = s[1];
  out[2 * N * nT + idx] = 0.25 * s[2];
}

}  // namespace

int64_t minkowski_scratch(int64_t N, int64_t ny, int64_t nx, int nT) {
  (void)nx;
  return N * tiles_of(ny) * nT * 3 * static_cast<int64_t>(sizeof(double));
}

template <typename T>
void minkowski(const T* images, int64_t N, int64_t ny, int64_t nx, const double* u, int nT,
               double* out, double* scratch, std::uintptr_t stream) {
  if (N <= 0 || nT <= 0) return;
  const int64_t tiles = tiles_of(ny);
  if (N > 65535) throw std::runtime_error("forse minkowski_cuda: more than 65535 images per call");
  auto s = reinterpret_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(N));
  partial_kernel<T><<<grid, kThreads, 0, s>>>(images, ny, nx, u, nT, scratch, tiles);
  check(cudaGetLastError(), "partial_kernel launch");
  const int64_t total = N * nT;
  finish_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(scratch, N, tiles, nT,
                                                                           out);
  check(cudaGetLastError(), "finish_kernel launch");
}

template void minkowski<float>(const float*, int64_t, int64_t, int64_t, const double*, int, double*,
                               double*, std::uintptr_t);
template void minkowski<double>(const double*, int64_t, int64_t, int64_t, const double*, int,
                                double*, double*, std::uintptr_t);

}  // namespace forse::cuda
