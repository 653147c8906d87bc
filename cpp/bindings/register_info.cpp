#include <dlfcn.h>
#include <stdexcept>
#include <string>
#include <pybind11/stl.h>

#include <unmix.hpp>
#include <unmix/comm/grid_shape.hpp>

#include "register.hpp"

namespace py = pybind11;

extern "C" void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
                       const double*, const int*, const double*, const int*, const double*, double*,
                       const int*);

namespace unmix::bindings {

// The names the solver and init parameters accept, from the shared table.
template <typename Enum, std::size_t N>
static py::dict table(const NamedValue<Enum> (&t)[N]) {
  py::dict d;
  for (const auto& e : t) d[e.name] = e.summary;
  return d;
}

void register_info(py::module_& m) {
  m.attr("__version__") = unmix::version;
  m.def("solvers", [] { return table(solver_table); },
        "Solver names mapped to a one-line summary.");
  m.def("losses", [] { return table(loss_table); },
        "Loss names mapped to a one-line summary.");
  m.def("inits", [] { return table(init_table); },
        "Initialization names mapped to a one-line summary.");
  // Several BLAS libraries may be loaded (numpy and scipy bring their own):
  // this is the one the core calls, so that its threads can be set alone.
  m.def("blas_path", [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&dgemm_), &info) == 0 || info.dli_fname == nullptr)
      return std::string();
    return std::string(info.dli_fname);
  }, "The file of the BLAS library the core calls.");
  m.def("data_limit", [](const std::string& dtype) {
    if (dtype == "float32") return data_limit<float>();
    if (dtype == "float64") return data_limit<double>();
    throw std::invalid_argument("unmix._core.data_limit: dtype must be 'float32' or 'float64', got '" +
                                dtype + "'");
  }, py::arg("dtype"),
        "The largest magnitude of data of this dtype that a fit computes with; the smallest is its "
        "inverse.");
  m.def("choose_grid", &comm::choose_grid, py::arg("p"), py::arg("m"), py::arg("n"),
        "The (pr, pc) process grid with the least communication for an m x n matrix M.");
}

}  // namespace unmix::bindings
