#include "bindings.hpp"

void add_minkowski(pybind11::module_& m) { (void)m; }
