#include "bindings.hpp"

void add_healpix(pybind11::module_& m) { (void)m; }
