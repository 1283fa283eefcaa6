// forse._core projection kernels. Arguments are validated in forse/projection.py; the checks
// here only guard the memory layout the kernels rely on.
#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "forse/cpu_api.hpp"

namespace py = pybind11;
using darr = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

template <typename T>
py::array project_t(py::array maps, darr lon, darr lat, int npix, double d, bool nest,
                    bool nearest, bool pol, int nthreads) {
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
                        bool want_weights, int nthreads) {
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
  m.def("healpix_to_patches", [](py::array maps, darr lon, darr lat, int npix, double d, bool nest,
                                 bool nearest, bool pol, int nthreads) -> py::array {
    check_stack(maps, 2, "m");
    if (lon.size() != lat.size()) throw py::value_error("`lon` and `lat` differ in length");
    if (py::isinstance<py::array_t<float>>(maps))
      return project_t<float>(maps, lon, lat, npix, d, nest, nearest, pol, nthreads);
    if (py::isinstance<py::array_t<double>>(maps))
      return project_t<double>(maps, lon, lat, npix, d, nest, nearest, pol, nthreads);
    throw py::type_error("`m` must be float32 or float64");
  }, py::arg("maps"), py::arg("lon"), py::arg("lat"), py::arg("npix"), py::arg("d"),
     py::arg("nest"), py::arg("nearest"), py::arg("pol"), py::arg("nthreads"),
     "maps (k, 12 nside^2) -> patches (N, k, npix, npix); d: pixel size in radians.");

  m.def("patches_to_healpix", [](py::array patches, darr lon, darr lat, int64_t nside, double d,
                                 int kind, darr warr, double taper_fraction, bool bicubic,
                                 bool nest, bool pol, bool want_weights, int nthreads) -> py::tuple {
    check_stack(patches, 4, "patches");
    if (patches.shape(0) != lon.size() || lon.size() != lat.size())
      throw py::value_error("`patches`, `lon` and `lat` differ in length");
    if (kind == 2 && (warr.ndim() != 2 || warr.shape(0) != patches.shape(2) || warr.shape(1) != patches.shape(3)))
      throw py::value_error("`window` array does not match the patch shape");
    if (py::isinstance<py::array_t<float>>(patches))
      return backproject_t<float>(patches, lon, lat, nside, d, kind, warr, taper_fraction, bicubic,
                                  nest, pol, want_weights, nthreads);
    if (py::isinstance<py::array_t<double>>(patches))
      return backproject_t<double>(patches, lon, lat, nside, d, kind, warr, taper_fraction, bicubic,
                                   nest, pol, want_weights, nthreads);
    throw py::type_error("`patches` must be float32 or float64");
  }, py::arg("patches"), py::arg("lon"), py::arg("lat"), py::arg("nside"), py::arg("d"),
     py::arg("window_kind"), py::arg("window"), py::arg("taper_fraction"), py::arg("bicubic"),
     py::arg("nest"), py::arg("pol"), py::arg("want_weights"), py::arg("nthreads"),
     "patches (N, k, npix, npix) -> (maps (k, 12 nside^2), weights or None).");
}
