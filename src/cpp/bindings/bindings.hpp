#pragma once
#include <pybind11/pybind11.h>

// One registration function per family, each in its own add_<family>.cpp.
void add_healpix(pybind11::module_& m);
void add_projection(pybind11::module_& m);
void add_minkowski(pybind11::module_& m);
