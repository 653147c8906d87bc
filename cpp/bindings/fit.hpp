#pragma once
// What every binding of a fit shares: options from a dict, the Python
// progress hook, the GIL released around the compute, the result as a dict.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <optional>
#include <set>
#include <string>

#include <unmix.hpp>

#include "numpy_arma.hpp"

namespace unmix::bindings {

namespace py = pybind11;

// Options come as a dict of the C++ names; unknown keys are an error so a
// typo in the Python layer cannot be silently ignored.
inline Options parse_options(const py::dict& d) {
  static const std::set<std::string> known = {
      "solver", "init", "max_iter", "tol", "time_limit", "seed", "l1_W", "l1_H",
      "l2_W", "l2_H", "fixed_W", "fixed_H", "transposed", "data_name"};
  for (const auto& item : d) {
    const auto key = py::cast<std::string>(item.first);
    if (!known.count(key)) throw std::invalid_argument("unmix._core: unknown option '" + key + "'");
  }
  Options o;
  auto get = [&](const char* key, auto& field) {
    if (d.contains(key)) field = py::cast<std::decay_t<decltype(field)>>(d[key]);
  };
  if (d.contains("solver")) o.solver = parse_solver(py::cast<std::string>(d["solver"]));
  if (d.contains("init")) o.init = parse_init(py::cast<std::string>(d["init"]));
  get("max_iter", o.max_iter);
  get("tol", o.tol);
  get("time_limit", o.time_limit);
  get("seed", o.seed);
  get("l1_W", o.W.l1);
  get("l1_H", o.H.l1);
  get("l2_W", o.W.l2);
  get("l2_H", o.H.l2);
  get("fixed_W", o.W.fixed);
  get("fixed_H", o.H.fixed);
  get("transposed", o.transposed);
  get("data_name", o.data_name);
  return o;
}

// Wraps the Python callback. It runs with the GIL held, checks for Ctrl-C,
// and turns any Python exception into a request to stop; the exception is
// re-raised once the driver has returned.
class PythonProgress {
 public:
  explicit PythonProgress(py::object callback) : callback_(std::move(callback)) {}

  Callback callback() {
    return [this](const Progress& p) {
      py::gil_scoped_acquire gil;
      try {
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        if (callback_.is_none()) return false;
        const py::object stop = callback_(p.iteration, p.objective, p.rel_error, p.elapsed);
        return !stop.is_none() && py::bool_(stop);
      } catch (...) {
        pending_ = std::current_exception();
        return true;
      }
    };
  }
  void rethrow() const {
    if (pending_) std::rethrow_exception(pending_);
  }

 private:
  py::object callback_;
  std::exception_ptr pending_;
};

template <typename eT>
std::optional<arma::Mat<eT>> factor(const std::optional<FArray<eT>>& a) {
  if (!a) return std::nullopt;
  return arma::Mat<eT>(view(*a));  // a copy: the fit overwrites it
}

template <typename eT>
py::dict to_dict(Result<eT>&& r) {
  py::dict d;
  d["W"] = to_numpy(std::move(r.W));
  d["H"] = to_numpy(std::move(r.H));
  d["n_iter"] = r.n_iter;
  d["objective"] = py::array_t<double>(r.objective.size(), r.objective.data());
  d["rel_error"] = py::array_t<double>(r.rel_error.size(), r.rel_error.data());
  d["data_norm"] = r.data_norm;
  d["converged"] = r.converged;
  d["stop_reason"] = to_string(r.stop_reason);
  py::dict t;
  t["init"] = r.timings.init;
  t["products"] = r.timings.products;
  t["gram"] = r.timings.gram;
  t["update"] = r.timings.update;
  t["total"] = r.timings.total;
  d["timings"] = t;
  return d;
}

template <typename eT, typename Data, typename Comm>
py::dict run(const Data& data, const Comm& comm, arma::uword m, arma::uword n, arma::uword k,
             const py::dict& options, const std::optional<FArray<eT>>& W0,
             const std::optional<FArray<eT>>& H0, const py::object& callback) {
  const Options opt = parse_options(options);
  const auto W = factor(W0), H = factor(H0);
  PythonProgress progress(callback);
  const Callback cb = progress.callback();
  Result<eT> result;
  {
    // Every Python object was converted above and the arrays stay referenced
    // by the arguments, so the compute needs no Python state: let other
    // threads run.
    py::gil_scoped_release release;
    result = nmf(data, comm, m, n, k, opt, W ? &*W : nullptr, H ? &*H : nullptr, cb);
  }
  progress.rethrow();
  return to_dict(std::move(result));
}

}  // namespace unmix::bindings
