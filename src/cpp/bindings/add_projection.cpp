// forse._core projection kernels. Arguments are validated in forse/projection.py; the checks
// here only guard the memory layout the kernels rely on.
#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "forse/cpu_api.hpp"
#ifdef FORSE_HAS_CUDA
#include "forse/cuda_api.hpp"
#endif

namespace py = pybind11;
using darr = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

template <typename T>
py::array project_t(py::array maps, darr lon, darr lat, int npix, double d, bool nest, bool nearest,
                    bool pol, int nthreads) {
  auto a = py::array_t<T>::ensure(maps);  // keeps strides of an already-T array
  const int64_t k = a.shape(0), npix_map = a.shape(1);
  const int64_t sk = a.strides(0), sp = a.strides(1);
  if (sk % int64_t(sizeof(T)) || sp % int64_t(sizeof(T)))
    throw py::value_error("`m` strides are not a multiple of the item size");
  const int64_t nside = int64_t(std::llround(std::sqrt(double(npix_map) / 12.0)));
  const int64_t n = lon.size();
  py::array_t<T> out({n, k, int64_t(npix), int64_t(npix)});
  const T* src = a.data();
  T* dst = out.mutable_data();
  const double *plon = lon.data(), *plat = lat.data();
  {
    py::gil_scoped_release nogil;
    forse::cpu::project<T>(src, k, sk / int64_t(sizeof(T)), sp / int64_t(sizeof(T)), nside, plon,
                           plat, n, npix, d, nest, nearest, pol, dst, nthreads);
  }
  return out;
}

template <typename T>
py::tuple backproject_t(py::array patches, darr lon, darr lat, int64_t nside, double d, int kind,
                        darr warr, double taper_fraction, bool bicubic, bool nest, bool pol,
                        bool want_weights, int nthreads, bool gather) {
  auto p = py::array_t<T, py::array::c_style>::ensure(patches);
  const int64_t n = p.shape(0), k = p.shape(1);
  const int npix = int(p.shape(2));
  const int64_t npix_map = 12 * nside * nside;
  py::array_t<T> out({k, npix_map});
  py::object wobj = py::none();
  double* wptr = nullptr;
  if (want_weights) {
    darr w(npix_map);
    wptr = w.mutable_data();
    wobj = w;
  }
  const T* src = p.data();
  T* dst = out.mutable_data();
  const double *plon = lon.data(), *plat = lat.data(), *pw = warr.data();
  {
    py::gil_scoped_release nogil;
    if (gather)
      forse::cpu::backproject_gather<T>(src, n, k, npix, plon, plat, nside, d, kind, pw,
                                        taper_fraction, bicubic, nest, pol, dst, wptr, nthreads);
    else
      forse::cpu::backproject<T>(src, n, k, npix, plon, plat, nside, d, kind, pw, taper_fraction,
                                 bicubic, nest, pol, dst, wptr, nthreads);
  }
  return py::make_tuple(out, wobj);
}

void check_stack(const py::array& a, int ndim, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string("`") + name + "` must have " + std::to_string(ndim) +
                          " dimensions, got " + std::to_string(a.ndim()));
  if (a.shape(ndim == 2 ? 0 : 1) > 16)
    throw py::value_error(std::string("`") + name + "` stacks more than 16 maps; split it");
}

}  // namespace

void add_projection(py::module_& m) {
  m.def(
      "healpix_to_patches",
      [](py::array maps, darr lon, darr lat, int npix, double d, bool nest, bool nearest, bool pol,
         int nthreads) -> py::array {
        check_stack(maps, 2, "m");
        if (lon.size() != lat.size()) throw py::value_error("`lon` and `lat` differ in length");
        if (py::isinstance<py::array_t<float>>(maps))
          return project_t<float>(maps, lon, lat, npix, d, nest, nearest, pol, nthreads);
        if (py::isinstance<py::array_t<double>>(maps))
          return project_t<double>(maps, lon, lat, npix, d, nest, nearest, pol, nthreads);
        throw py::type_error("`m` must be float32 or float64");
      },
      py::arg("maps"), py::arg("lon"), py::arg("lat"), py::arg("npix"), py::arg("d"),
      py::arg("nest"), py::arg("nearest"), py::arg("pol"), py::arg("nthreads"),
      "maps (k, 12 nside^2) -> patches (N, k, npix, npix); d: pixel size in radians.");

  for (const bool gather : {false, true}) {
    m.def(
        gather ? "patches_to_healpix_gather" : "patches_to_healpix",
        [gather](py::array patches, darr lon, darr lat, int64_t nside, double d, int kind,
                 darr warr, double taper_fraction, bool bicubic, bool nest, bool pol,
                 bool want_weights, int nthreads) -> py::tuple {
          check_stack(patches, 4, "patches");
          if (patches.shape(0) != lon.size() || lon.size() != lat.size())
            throw py::value_error("`patches`, `lon` and `lat` differ in length");
          if (kind == 2 && (warr.ndim() != 2 || warr.shape(0) != patches.shape(2) ||
                            warr.shape(1) != patches.shape(3)))
            throw py::value_error("`window` array does not match the patch shape");
          if (py::isinstance<py::array_t<float>>(patches))
            return backproject_t<float>(patches, lon, lat, nside, d, kind, warr, taper_fraction,
                                        bicubic, nest, pol, want_weights, nthreads, gather);
          if (py::isinstance<py::array_t<double>>(patches))
            return backproject_t<double>(patches, lon, lat, nside, d, kind, warr, taper_fraction,
                                         bicubic, nest, pol, want_weights, nthreads, gather);
          throw py::type_error("`patches` must be float32 or float64");
        },
        py::arg("patches"), py::arg("lon"), py::arg("lat"), py::arg("nside"), py::arg("d"),
        py::arg("window_kind"), py::arg("window"), py::arg("taper_fraction"), py::arg("bicubic"),
        py::arg("nest"), py::arg("pol"), py::arg("want_weights"), py::arg("nthreads"),
        gather ? "The CUDA back-projection algorithm (per-pixel gather) on the CPU, for tests."
               : "patches (N, k, npix, npix) -> (maps (k, 12 nside^2), weights or None).");
  }

#ifdef FORSE_HAS_CUDA
  // Device pointers (CuPy .data.ptr) in; forse/projection.py validates and allocates.
  m.def("healpix_to_patches_cuda",
        [](std::uintptr_t maps, bool f32, int64_t k, int64_t sk, int64_t sp, int64_t nside,
           darr lon, darr lat, int npix, double d, bool nest, bool nearest, bool pol,
           std::uintptr_t out, std::uintptr_t stream) {
          if (k > 16) throw py::value_error("`m` stacks more than 16 maps; split it");
          const double *plon = lon.data(), *plat = lat.data();
          const int64_t n = lon.size();
          py::gil_scoped_release nogil;
          if (f32)
            forse::cuda::project<float>(reinterpret_cast<const float*>(maps), k, sk, sp, nside,
                                        plon, plat, n, npix, d, nest, nearest, pol,
                                        reinterpret_cast<float*>(out), stream);
          else
            forse::cuda::project<double>(reinterpret_cast<const double*>(maps), k, sk, sp, nside,
                                         plon, plat, n, npix, d, nest, nearest, pol,
                                         reinterpret_cast<double*>(out), stream);
        });
  m.def("patches_to_healpix_cuda",
        [](std::uintptr_t patches, bool f32, int64_t n, int64_t k, int npix, darr lon, darr lat,
           int64_t nside, double d, int kind, darr warr, double taper_fraction, bool bicubic,
           bool nest, bool pol, std::uintptr_t out, std::uintptr_t weights, std::uintptr_t stream) {
          if (k > 16) throw py::value_error("`patches` stacks more than 16 maps; split it");
          const double *plon = lon.data(), *plat = lat.data(), *pw = warr.data();
          py::gil_scoped_release nogil;
          if (f32)
            forse::cuda::backproject<float>(reinterpret_cast<const float*>(patches), n, k, npix,
                                            plon, plat, nside, d, kind, pw, taper_fraction, bicubic,
                                            nest, pol, reinterpret_cast<float*>(out),
                                            reinterpret_cast<double*>(weights), stream);
          else
            forse::cuda::backproject<double>(reinterpret_cast<const double*>(patches), n, k, npix,
                                             plon, plat, nside, d, kind, pw, taper_fraction,
                                             bicubic, nest, pol, reinterpret_cast<double*>(out),
                                             reinterpret_cast<double*>(weights), stream);
        });
#endif
}
