// The one compiled module, forse._core: each family registers itself from its own file.
#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "forse/config.hpp"

#ifdef FORSE_HAS_CUDA
#include <cuda_runtime.h>
#endif

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "forse compiled core (private): use forse.projection / forse.minkowski instead";
#ifdef FORSE_HAS_CUDA
  m.attr("HAS_CUDA") = true;
#else
  m.attr("HAS_CUDA") = false;
#endif
  m.def("cuda_device_count", []() {
#ifdef FORSE_HAS_CUDA
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
#else
    return 0;
#endif
  });
  m.def("max_threads", []() { return forse::max_threads(); });
  add_healpix(m);
  add_projection(m);
  add_minkowski(m);
}
