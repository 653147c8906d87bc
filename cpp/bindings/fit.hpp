#pragma once
// What every binding of a fit shares: options from a dict, the Python
// progress hook, the GIL released around the compute, the result as a dict.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <optional>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include <unmix.hpp>

#include "numpy_arma.hpp"

namespace unmix::bindings {

namespace py = pybind11;

// Sets field from d[key] when the key is there.
template <typename T>
void read_if(const py::dict& d, const std::string& key, T& field) {
  if (d.contains(key)) field = py::cast<T>(d[key.c_str()]);
}

// Per-factor options arrive with the factor's name as a suffix ("l1_W").
inline void parse_factor(const py::dict& d, const std::string& f, FactorOptions& o) {
  auto key = [&](const char* base) { return std::string(base) + "_" + f; };
  auto get = [&](const char* base, auto& field) { read_if(d, key(base), field); };
  get("l1", o.l1);
  get("l2", o.l2);
  get("fixed", o.fixed);
  get("smooth", o.smooth);
  get("minvol", o.minvol);
  get("minvol_delta", o.minvol_delta);
  get("lower", o.lower);
  get("upper", o.upper);
  get("simplex", o.simplex);
  get("fixed_cols", o.fixed_cols);
  get("name", o.name);
  auto vec = [&](const char* base, arma::vec& v) {
    if (!d.contains(key(base))) return;
    const auto a = py::cast<py::array_t<double, py::array::c_style | py::array::forcecast>>(d[key(base).c_str()]);
    v = arma::vec(a.data(), static_cast<arma::uword>(a.size()));
  };
  vec("lower_cols", o.lower_cols);
  vec("upper_cols", o.upper_cols);
  vec("simplex_sums", o.simplex_sums);
  if (d.contains(key("fixed_values"))) {
    const auto a = py::cast<FArray<double>>(d[key("fixed_values").c_str()]);
    o.fixed_values = arma::mat(a.data(), a.shape(0), a.shape(1));
  }
  if (d.contains(key("graph"))) {  // (indptr, indices, data, n) of a CSC matrix
    const auto g = py::cast<py::tuple>(d[key("graph").c_str()]);
    const auto indptr = py::cast<py::array_t<arma::uword, py::array::c_style | py::array::forcecast>>(g[0]);
    const auto indices = py::cast<py::array_t<arma::uword, py::array::c_style | py::array::forcecast>>(g[1]);
    const auto values = py::cast<py::array_t<double, py::array::c_style | py::array::forcecast>>(g[2]);
    const auto n = py::cast<arma::uword>(g[3]);
    o.graph = std::make_shared<const arma::sp_mat>(
        arma::uvec(indices.data(), indices.size()), arma::uvec(indptr.data(), indptr.size()),
        arma::vec(values.data(), values.size()), n, n);
  }
}

// Options come as a dict of the C++ names; unknown keys are an error so a
// typo in the Python layer cannot be silently ignored.
inline Options parse_options(const py::dict& d) {
  static const std::set<std::string> general = {"solver", "init", "loss", "max_iter", "tol",
                                                "time_limit", "seed", "transposed", "data_name",
                                                "threads", "extrapolate"};
  static const std::set<std::string> per_factor = {
      "l1", "l2", "fixed", "smooth", "minvol", "minvol_delta", "graph", "lower", "upper", "lower_cols",
      "upper_cols", "simplex", "simplex_sums", "fixed_cols", "fixed_values", "name"};
  for (const auto& item : d) {
    const auto key = py::cast<std::string>(item.first);
    const auto cut = key.rfind('_');
    const bool factor_key = cut != std::string::npos && per_factor.count(key.substr(0, cut)) &&
                            (key.substr(cut + 1) == "W" || key.substr(cut + 1) == "H");
    if (!general.count(key) && !factor_key)
      throw std::invalid_argument("unmix._core: unknown option '" + key + "'");
  }
  Options o;
  auto get = [&](const char* key, auto& field) { read_if(d, key, field); };
  if (d.contains("solver")) o.solver = parse_solver(py::cast<std::string>(d["solver"]));
  if (d.contains("init")) o.init = parse_init(py::cast<std::string>(d["init"]));
  if (d.contains("loss")) o.loss = parse_loss(py::cast<std::string>(d["loss"]));
  get("max_iter", o.max_iter);
  get("tol", o.tol);
  get("time_limit", o.time_limit);
  get("seed", o.seed);
  get("transposed", o.transposed);
  get("threads", o.threads);
  get("extrapolate", o.extrapolate);
  get("data_name", o.data_name);
  parse_factor(d, "W", o.W);
  parse_factor(d, "H", o.H);
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

inline py::list events_to_list(const std::vector<Event>& events) {
  py::list out;
  for (const Event& e : events) out.append(py::make_tuple(e.iteration, e.what));
  return out;
}

template <typename eT>
py::dict state_to_dict(const State<eT>& s) {
  py::dict d;
  d["iteration"] = s.iteration;
  d["W"] = to_numpy(arma::Mat<eT>(s.W));
  d["H"] = to_numpy(arma::Mat<eT>(s.H));
  d["objective"] = py::array_t<double>(s.objective.size(), s.objective.data());
  d["rel_error"] = py::array_t<double>(s.rel_error.size(), s.rel_error.data());
  d["elapsed"] = s.elapsed;
  d["data_norm"] = s.data_norm;
  d["fixed_at_start"] = py::array_t<double>(s.fixed_at_start.size(), s.fixed_at_start.data());
  d["events"] = events_to_list(s.events);
  d["gram_W"] = to_numpy(arma::Mat<eT>(s.gram_W));
  d["gram_H"] = to_numpy(arma::Mat<eT>(s.gram_H));
  d["W_plain"] = to_numpy(arma::Mat<eT>(s.W_plain));
  d["H_plain"] = to_numpy(arma::Mat<eT>(s.H_plain));
  d["W_next"] = to_numpy(arma::Mat<eT>(s.W_next));
  d["H_next"] = to_numpy(arma::Mat<eT>(s.H_next));
  d["extrapolation"] = py::array_t<double>(s.extrapolation.size(), s.extrapolation.data());
  return d;
}

template <typename eT>
State<eT> state_from_dict(const py::dict& d) {
  State<eT> s;
  auto vector = [&](const char* key) {
    const auto a = py::cast<py::array_t<double, py::array::c_style | py::array::forcecast>>(d[key]);
    return std::vector<double>(a.data(), a.data() + a.size());
  };
  s.iteration = py::cast<int>(d["iteration"]);
  s.W = arma::Mat<eT>(view(py::cast<FArray<eT>>(d["W"])));
  s.H = arma::Mat<eT>(view(py::cast<FArray<eT>>(d["H"])));
  s.objective = vector("objective");
  s.rel_error = vector("rel_error");
  s.elapsed = py::cast<double>(d["elapsed"]);
  s.data_norm = py::cast<double>(d["data_norm"]);
  s.fixed_at_start = vector("fixed_at_start");
  for (const auto& e : py::cast<py::list>(d["events"])) {
    const auto t = py::cast<py::tuple>(e);
    s.events.push_back({py::cast<int>(t[0]), py::cast<std::string>(t[1])});
  }
  if (d.contains("gram_W")) {  // checkpoints of unmix 0.1.0 have none
    s.gram_W = arma::Mat<eT>(view(py::cast<FArray<eT>>(d["gram_W"])));
    s.gram_H = arma::Mat<eT>(view(py::cast<FArray<eT>>(d["gram_H"])));
  }
  if (d.contains("extrapolation")) {
    s.extrapolation = vector("extrapolation");
    s.W_plain = arma::Mat<eT>(view(py::cast<FArray<eT>>(d["W_plain"])));
    s.H_plain = arma::Mat<eT>(view(py::cast<FArray<eT>>(d["H_plain"])));
    s.W_next = arma::Mat<eT>(view(py::cast<FArray<eT>>(d["W_next"])));
    s.H_next = arma::Mat<eT>(view(py::cast<FArray<eT>>(d["H_next"])));
  }
  return s;
}

// The Python side of checkpointing: a dict {"save": callable(state dict) or
// None, "every": int, "seconds": float, "resume": state dict or None}. The
// save function runs with the GIL; if it raises, the run ends and the
// exception is raised once the GIL is back.
template <typename eT>
class PythonCheckpoint {
 public:
  struct Failed {};

  explicit PythonCheckpoint(const py::object& spec) {
    if (spec.is_none()) return;
    const auto d = py::cast<py::dict>(spec);
    read_if(d, "every", settings_.every);
    read_if(d, "seconds", settings_.seconds);
    if (d.contains("resume") && !d["resume"].is_none()) {
      resume_ = state_from_dict<eT>(py::cast<py::dict>(d["resume"]));
      settings_.resume = &resume_;
    }
    if (d.contains("save") && !d["save"].is_none()) {
      save_ = py::cast<py::object>(d["save"]);
      settings_.save = [this](const State<eT>& s) {
        py::gil_scoped_acquire gil;
        try {
          save_(state_to_dict(s));
        } catch (...) {
          pending_ = std::current_exception();
          throw Failed{};
        }
      };
    }
  }
  const Checkpointing<eT>& settings() const { return settings_; }
  void rethrow() const {
    if (pending_) std::rethrow_exception(pending_);
  }

 private:
  Checkpointing<eT> settings_;
  State<eT> resume_;
  py::object save_;
  std::exception_ptr pending_;
};

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
  d["events"] = events_to_list(r.events);
  return d;
}

template <typename eT, typename Data, typename Comm>
py::dict run(const Data& data, const Comm& comm, arma::uword m, arma::uword n, arma::uword k,
             const py::dict& options, const std::optional<FArray<eT>>& W0,
             const std::optional<FArray<eT>>& H0, const py::object& callback,
             const py::object& checkpoint) {
  const Options opt = parse_options(options);
  const auto W = factor(W0), H = factor(H0);
  PythonProgress progress(callback);
  const Callback cb = progress.callback();
  const PythonCheckpoint<eT> checkpointing(checkpoint);
  Result<eT> result;
  try {
    // Every Python object was converted above and the arrays stay referenced
    // by the arguments, so the compute needs no Python state: let other
    // threads run.
    py::gil_scoped_release release;
    result = nmf(data, comm, m, n, k, opt, W ? &*W : nullptr, H ? &*H : nullptr, cb,
                 checkpointing.settings());
  } catch (const typename PythonCheckpoint<eT>::Failed&) {
    checkpointing.rethrow();
  }
  progress.rethrow();
  return to_dict(std::move(result));
}

}  // namespace unmix::bindings
