// unmix._core: the thin pybind11 layer over the header library. Each file
// registers one group of functions; the Python package builds the
// user-facing API on top.
#include <pybind11/pybind11.h>

#include "register.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled core of unmix (use the functions in the unmix package).";
  unmix::bindings::register_info(m);
  unmix::bindings::register_nmf(m);
}
