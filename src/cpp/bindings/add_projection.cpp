#include "bindings.hpp"

void add_projection(pybind11::module_& m) { (void)m; }
