// forse._core HEALPix geometry (vectorized, RING/NEST), mainly for tests against healpy.
#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "forse/cpu_api.hpp"

namespace py = pybind11;
using darr = py::array_t<double, py::array::c_style | py::array::forcecast>;
using iarr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

namespace {

void check_nside(int64_t nside) {
  if (nside < 1 || nside > (int64_t(1) << 29) || (nside & (nside - 1)))
    throw py::value_error("nside must be a power of two in [1, 2**29], got " +
                          std::to_string(nside));
}

void same_size(const py::array& a, const py::array& b, const char* na, const char* nb) {
  if (a.size() != b.size())
    throw py::value_error(std::string("`") + na + "` and `" + nb +
                          "` must have the same size, got " + std::to_string(a.size()) + " and " +
                          std::to_string(b.size()));
}

}  // namespace

void add_healpix(py::module_& m) {
  m.def(
      "ang2pix",
      [](int64_t nside, darr theta, darr phi, bool nest) {
        check_nside(nside);
        same_size(theta, phi, "theta", "phi");
        iarr out(theta.size());
        const double *t = theta.data(), *p = phi.data();
        int64_t* o = out.mutable_data();
        const int64_t n = theta.size();
        {
          py::gil_scoped_release nogil;
          forse::cpu::ang2pix(nside, t, p, n, nest, o);
        }
        return out;
      },
      py::arg("nside"), py::arg("theta"), py::arg("phi"), py::arg("nest") = false,
      "Pixel index of (theta, phi) [radians], as healpy.ang2pix.");

  m.def(
      "pix2ang",
      [](int64_t nside, iarr pix, bool nest) {
        check_nside(nside);
        darr theta(pix.size()), phi(pix.size());
        const int64_t* p = pix.data();
        double *t = theta.mutable_data(), *f = phi.mutable_data();
        const int64_t n = pix.size();
        for (int64_t i = 0; i < n; ++i)
          if (p[i] < 0 || p[i] >= 12 * nside * nside)
            throw py::value_error("pixel index " + std::to_string(p[i]) + " out of range");
        {
          py::gil_scoped_release nogil;
          forse::cpu::pix2ang(nside, p, n, nest, t, f);
        }
        return py::make_tuple(theta, phi);
      },
      py::arg("nside"), py::arg("pix"), py::arg("nest") = false,
      "(theta, phi) of pixel centres, as healpy.pix2ang.");

  m.def(
      "interp_weights",
      [](int64_t nside, darr theta, darr phi, bool nest) {
        check_nside(nside);
        same_size(theta, phi, "theta", "phi");
        const int64_t n = theta.size();
        iarr pix({int64_t(4), n});
        darr wgt({int64_t(4), n});
        const double *t = theta.data(), *p = phi.data();
        int64_t* po = pix.mutable_data();
        double* wo = wgt.mutable_data();
        {
          py::gil_scoped_release nogil;
          forse::cpu::interp_weights(nside, t, p, n, nest, po, wo);
        }
        return py::make_tuple(pix, wgt);
      },
      py::arg("nside"), py::arg("theta"), py::arg("phi"), py::arg("nest") = false,
      "(pix (4, n), weights (4, n)) as healpy.get_interp_weights.");

  // ring2nest and nest2ring differ only in the kernel they run
  using reorder_fn = void (*)(int64_t, const int64_t*, int64_t, int64_t*);
  auto bind_reorder = [&m](const char* name, reorder_fn fn) {
    m.def(
        name,
        [fn](int64_t nside, iarr pix) {
          check_nside(nside);
          iarr out(pix.size());
          const int64_t* p = pix.data();
          int64_t* o = out.mutable_data();
          const int64_t n = pix.size();
          {
            py::gil_scoped_release nogil;
            fn(nside, p, n, o);
          }
          return out;
        },
        py::arg("nside"), py::arg("pix"));
  };
  bind_reorder("ring2nest", &forse::cpu::ring2nest);
  bind_reorder("nest2ring", &forse::cpu::nest2ring);
}
