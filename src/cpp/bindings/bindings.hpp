#pragma once
#include <pybind11/pybind11.h>

#ifdef _OPENMP
#include <omp.h>
#endif

inline int forse_max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// One registration function per family, each in its own add_<family>.cpp.
void add_healpix(pybind11::module_& m);
void add_projection(pybind11::module_& m);
void add_minkowski(pybind11::module_& m);
