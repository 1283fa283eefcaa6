// Bindings for the Minkowski functionals. forse/minkowski.py validates and converts the inputs;
// these functions re-check the array policy (no silent conversion) and run the kernels without
// the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings.hpp"
#include "forse/cpu_api.hpp"
#ifdef FORSE_HAS_CUDA
#include "forse/cuda_api.hpp"
#endif

namespace py = pybind11;

namespace {

template <class T>
py::tuple run_cpu(const py::array& images, const py::array_t<double, py::array::c_style>& u,
                  int nthreads) {
  const int64_t N = images.shape(0), ny = images.shape(1), nx = images.shape(2);
  const int nT = static_cast<int>(u.shape(0));
  py::array_t<double> v0({N, static_cast<int64_t>(nT)}), v1({N, static_cast<int64_t>(nT)}),
      v2({N, static_cast<int64_t>(nT)});
  const T* img = static_cast<const T*>(images.data());
  const double* up = u.data();
  double *p0 = v0.mutable_data(), *p1 = v1.mutable_data(), *p2 = v2.mutable_data();
  {
    py::gil_scoped_release release;
    forse::cpu::minkowski<T>(img, N, ny, nx, up, nT, p0, p1, p2, nthreads);
  }
  return py::make_tuple(v0, v1, v2);
}

py::tuple minkowski_cpu_py(const py::array& images, const py::array& thresholds, int nthreads) {
  if (images.ndim() != 3)
    throw py::value_error("`images` must be 3-D (N, ny, nx), got ndim " +
                          std::to_string(images.ndim()));
  if (images.shape(1) < 2 || images.shape(2) < 2)
    throw py::value_error("`images` must have at least 2x2 pixels per image");
  if (!(images.flags() & py::array::c_style))
    throw py::value_error("`images` must be C-contiguous (forse.minkowski makes it so)");
  if (thresholds.ndim() != 1 || thresholds.shape(0) < 1)
    throw py::value_error("`thresholds` must be 1-D and non-empty");
  if (!py::isinstance<py::array_t<double>>(thresholds) ||
      !(thresholds.flags() & py::array::c_style))
    throw py::type_error("`thresholds` must be C-contiguous float64");
  const auto u = py::array_t<double, py::array::c_style>::ensure(thresholds);
  if (py::isinstance<py::array_t<float>>(images)) return run_cpu<float>(images, u, nthreads);
  if (py::isinstance<py::array_t<double>>(images)) return run_cpu<double>(images, u, nthreads);
  throw py::type_error("`images` must be float32 or float64, got dtype " +
                       std::string(py::str(images.dtype())));
}

}  // namespace

void add_minkowski(py::module_& m) {
  m.def("minkowski_cpu", &minkowski_cpu_py, py::arg("images"), py::arg("thresholds"),
        py::arg("nthreads") = 0,
        "Raw Minkowski functionals (v0, v1, v2), each (N, T) float64, of C-contiguous "
        "float32/float64 images (N, ny, nx) at sorted float64 thresholds (T,).");
  m.def("minkowski_cpu_simd", &forse::cpu::minkowski_simd, py::arg("enable") = -1,
        "Testing hook: use (1) or skip (0) the AVX2 path of minkowski_cpu (-1: only report). "
        "Returns whether it was in use before the call.");
#ifdef FORSE_HAS_CUDA
  m.def("minkowski_cuda_scratch", &forse::cuda::minkowski_scratch, py::arg("N"), py::arg("ny"),
        py::arg("nx"), py::arg("nT"), "Bytes of device scratch minkowski_cuda needs.");
  // Device pointers (CuPy .data.ptr) in; forse/minkowski.py validates and allocates. out is
  // (3, N, T) float64; runs on `stream` (0 = legacy default).
  m.def(
      "minkowski_cuda",
      [](std::uintptr_t images, bool is_float32, int64_t N, int64_t ny, int64_t nx,
         std::uintptr_t u, int nT, std::uintptr_t out, std::uintptr_t scratch,
         std::uintptr_t stream) {
        const auto* up = reinterpret_cast<const double*>(u);
        auto* po = reinterpret_cast<double*>(out);
        auto* ps = reinterpret_cast<double*>(scratch);
        py::gil_scoped_release release;
        if (is_float32)
          forse::cuda::minkowski<float>(reinterpret_cast<const float*>(images), N, ny, nx, up, nT,
                                        po, ps, stream);
        else
          forse::cuda::minkowski<double>(reinterpret_cast<const double*>(images), N, ny, nx, up, nT,
                                         po, ps, stream);
      },
      py::arg("images"), py::arg("is_float32"), py::arg("N"), py::arg("ny"), py::arg("nx"),
      py::arg("thresholds"), py::arg("nT"), py::arg("out"), py::arg("scratch"), py::arg("stream"),
      "Raw Minkowski functionals on the GPU from device pointers (see forse._minkowski_cuda).");
#endif
}
