// Patches -> HEALPix on the GPU as a gather: one thread per HEALPix pixel visits the patches
// whose bounding cap reaches its ring, in increasing patch order (a per-ring candidate list
// built on the host), so the sums are deterministic without atomics.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "check.cuh"
#include "forse/backproject.hpp"
#include "forse/cuda_api.hpp"

namespace forse::cuda {
namespace {

template <typename T>
__global__ void gather_kernel(const T* patches, int64_t k, int npix, Healpix<int64_t> hb,
                              const PatchFrame* frames, const int64_t* offsets, const int* cand,
                              double d, int window_kind, const double* warr, double inv_width,
                              bool cubic, bool nest, bool pol, T* out, double* weights) {
  const int64_t pix = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (pix >= hb.npix) return;
  const int64_t r = hb.pix2ring(pix);
  const int64_t o0 = offsets[r], o1 = offsets[r + 1];
  gather_pixel(patches, k, npix, hb, frames, cand + o0, o1 - o0, d, window_kind, warr, inv_width,
               cubic, nest, pol, pix, out, weights);
}

}  // namespace

template <typename T>
void backproject(const T* patches, int64_t npatch, int64_t k, int npix, const double* lon,
                 const double* lat, int64_t nside, double d, int window_kind,
                 const double* window_host, double taper_fraction, bool bicubic, bool nest,
                 bool pol, T* out, double* weights, std::uintptr_t stream_handle) {
  const Healpix<int64_t> hb(nside);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  std::vector<PatchFrame> frames;
  std::vector<int64_t> offsets;
  std::vector<int> cand;
  ring_candidates(hb, lon, lat, npatch, npix, d, frames, offsets, cand);

  PatchFrame* d_frames = nullptr;
  int64_t* d_off = nullptr;
  int* d_cand = nullptr;
  double* d_win = nullptr;
  const size_t nwin = window_kind == kArray ? size_t(npix) * npix : 0;
  check(cudaMallocAsync(&d_frames, frames.size() * sizeof(PatchFrame), stream), "cudaMallocAsync");
  check(cudaMallocAsync(&d_off, offsets.size() * sizeof(int64_t), stream), "cudaMallocAsync");
  check(cudaMallocAsync(&d_cand, (cand.size() + 1) * sizeof(int), stream), "cudaMallocAsync");
  if (nwin) check(cudaMallocAsync(&d_win, nwin * sizeof(double), stream), "cudaMallocAsync");
  check(cudaMemcpyAsync(d_frames, frames.data(), frames.size() * sizeof(PatchFrame),
                        cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync");
  check(cudaMemcpyAsync(d_off, offsets.data(), offsets.size() * sizeof(int64_t),
                        cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync");
  if (!cand.empty())
    check(cudaMemcpyAsync(d_cand, cand.data(), cand.size() * sizeof(int), cudaMemcpyHostToDevice,
                          stream),
          "cudaMemcpyAsync");
  if (nwin)
    check(
        cudaMemcpyAsync(d_win, window_host, nwin * sizeof(double), cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync");
  const int block = 256;
  const unsigned grid = unsigned((hb.npix + block - 1) / block);
  gather_kernel<T><<<grid, block, 0, stream>>>(
      patches, k, npix, hb, d_frames, d_off, d_cand, d, window_kind, d_win,
      1.0 / (taper_fraction * double(npix - 1)), bicubic, nest, pol, out, weights);
  check(cudaGetLastError(), "gather_kernel launch");
  check(cudaFreeAsync(d_frames, stream), "cudaFreeAsync");
  check(cudaFreeAsync(d_off, stream), "cudaFreeAsync");
  check(cudaFreeAsync(d_cand, stream), "cudaFreeAsync");
  if (nwin) check(cudaFreeAsync(d_win, stream), "cudaFreeAsync");
  check(cudaStreamSynchronize(stream), "gather_kernel");  // host vectors are read asynchronously
}

template void backproject<float>(const float*, int64_t, int64_t, int, const double*, const double*,
                                 int64_t, double, int, const double*, double, bool, bool, bool,
                                 float*, double*, std::uintptr_t);
template void backproject<double>(const double*, int64_t, int64_t, int, const double*,
                                  const double*, int64_t, double, int, const double*, double, bool,
                                  bool, bool, double*, double*, std::uintptr_t);

}  // namespace forse::cuda
