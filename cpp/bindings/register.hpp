#pragma once
#include <pybind11/pybind11.h>

namespace unmix::bindings {
void register_info(pybind11::module_& m);
void register_nmf(pybind11::module_& m);
}  // namespace unmix::bindings
