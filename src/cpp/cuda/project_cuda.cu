// HEALPix -> patches on the GPU: one thread per output patch pixel, the same per-pixel code as
// the CPU backend (forse::project_pixel).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "check.cuh"
#include "forse/cuda_api.hpp"
#include "forse/interp.hpp"

namespace forse::cuda {
namespace {

template <typename T>
__global__ void project_kernel(const T* maps, int64_t k, int64_t sk, int64_t sp,
                               Healpix<int64_t> hb, const double* ring_theta,
                               const PatchFrame* frames, int64_t npatch, int npix, double d,
                               bool nest, bool nearest, bool pol, T* out) {
  const int64_t plane = int64_t(npix) * npix;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= npatch * plane) return;
  const int64_t n = idx / plane, rem = idx - n * plane;
  const int i = int(rem / npix), j = int(rem - int64_t(i) * npix);
  project_pixel(maps, k, sk, sp, hb, ring_theta, frames[n], i, j, npix, d, nest, nearest, pol,
                out + n * k * plane + rem, plane);
}

}  // namespace

template <typename T>
void project(const T* maps, int64_t k, int64_t stride_k, int64_t stride_p, int64_t nside,
             const double* lon, const double* lat, int64_t npatch, int npix, double d, bool nest,
             bool nearest, bool pol, T* out, std::uintptr_t stream_handle) {
  const Healpix<int64_t> hb(nside);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  std::vector<double> ring_theta(4 * nside);
  for (int64_t r = 1; r < 4 * nside; ++r) ring_theta[r] = hb.ring(r).theta;
  std::vector<PatchFrame> frames(npatch);
  for (int64_t n = 0; n < npatch; ++n) frames[n] = make_frame(lon[n], lat[n]);
  double* d_rt = nullptr;
  PatchFrame* d_frames = nullptr;
  check(cudaMallocAsync(&d_rt, ring_theta.size() * sizeof(double), stream), "cudaMallocAsync");
  check(cudaMallocAsync(&d_frames, frames.size() * sizeof(PatchFrame), stream), "cudaMallocAsync");
  check(cudaMemcpyAsync(d_rt, ring_theta.data(), ring_theta.size() * sizeof(double),
                        cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync");
  check(cudaMemcpyAsync(d_frames, frames.data(), frames.size() * sizeof(PatchFrame),
                        cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync");
  const int64_t total = npatch * int64_t(npix) * npix;
  const int block = 256;
  const unsigned grid = unsigned((total + block - 1) / block);
  if (total > 0)
    project_kernel<T><<<grid, block, 0, stream>>>(maps, k, stride_k, stride_p, hb, d_rt, d_frames,
                                                  npatch, npix, d, nest, nearest, pol, out);
  check(cudaGetLastError(), "project_kernel launch");
  check(cudaFreeAsync(d_rt, stream), "cudaFreeAsync");
  check(cudaFreeAsync(d_frames, stream), "cudaFreeAsync");
  // The host vectors die here: wait until the async copies have read them.
  check(cudaStreamSynchronize(stream), "project_kernel");
}

template void project<float>(const float*, int64_t, int64_t, int64_t, int64_t, const double*,
                             const double*, int64_t, int, double, bool, bool, bool, float*,
                             std::uintptr_t);
template void project<double>(const double*, int64_t, int64_t, int64_t, int64_t, const double*,
                              const double*, int64_t, int, double, bool, bool, bool, double*,
                              std::uintptr_t);

}  // namespace forse::cuda
