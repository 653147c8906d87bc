#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <optional>
#include <set>
#include <string>

#include <unmix.hpp>

#include "numpy_arma.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace unmix::bindings {

namespace {

// Options come as a dict of the C++ names; unknown keys are an error so a
// typo in the Python layer cannot be silently ignored.
Options parse_options(const py::dict& d) {
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

template <typename eT, typename Data>
py::dict run(const Data& data, arma::uword k, const py::dict& options,
             const std::optional<FArray<eT>>& W0, const std::optional<FArray<eT>>& H0,
             const py::object& callback) {
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
    result = nmf(data, comm::Serial{}, data.n_rows(), data.n_cols(), k, opt,
                 W ? &*W : nullptr, H ? &*H : nullptr, cb);
  }
  progress.rethrow();
  return to_dict(std::move(result));
}

template <typename eT>
py::dict nmf_dense(const FArray<eT>& M, arma::uword k, const py::dict& options,
                   const std::optional<FArray<eT>>& W0, const std::optional<FArray<eT>>& H0,
                   const py::object& callback) {
  const arma::Mat<eT> Mv = view(M);
  return run<eT>(data::Dense<eT>(Mv), k, options, W0, H0, callback);
}

template <typename eT, typename Index>
py::dict nmf_sparse(const py::array_t<Index, py::array::c_style>& indptr,
                    const py::array_t<Index, py::array::c_style>& indices,
                    const py::array_t<eT, py::array::c_style>& values, arma::uword n_rows,
                    arma::uword n_cols, arma::uword k, const py::dict& options,
                    const std::optional<FArray<eT>>& W0, const std::optional<FArray<eT>>& H0,
                    const py::object& callback) {
  if (static_cast<arma::uword>(indptr.size()) != n_cols + 1)
    throw std::invalid_argument("unmix._core: indptr must have n_cols + 1 = " +
                                std::to_string(n_cols + 1) + " entries, got " +
                                std::to_string(indptr.size()));
  const data::Sparse<eT, Index> data(n_rows, n_cols, indptr.data(), indices.data(), values.data());
  return run<eT>(data, k, options, W0, H0, callback);
}

template <typename eT>
void def_dense(py::module_& m) {
  m.def("nmf_dense", &nmf_dense<eT>, py::arg("M").noconvert(), py::arg("k"), py::arg("options"),
        py::arg("W0").noconvert() = py::none(), py::arg("H0").noconvert() = py::none(),
        py::arg("callback") = py::none());
}

template <typename eT, typename Index>
void def_sparse(py::module_& m) {
  m.def("nmf_sparse", &nmf_sparse<eT, Index>, py::arg("indptr").noconvert(),
        py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("n_rows"),
        py::arg("n_cols"), py::arg("k"), py::arg("options"),
        py::arg("W0").noconvert() = py::none(), py::arg("H0").noconvert() = py::none(),
        py::arg("callback") = py::none());
}

}  // namespace

void register_nmf(py::module_& m) {
  // noconvert: an array of the wrong dtype or layout is refused rather than
  // copied behind the caller's back; the Python layer decides about copies.
  def_dense<double>(m);
  def_dense<float>(m);
  def_sparse<double, std::int32_t>(m);
  def_sparse<double, std::int64_t>(m);
  def_sparse<float, std::int32_t>(m);
  def_sparse<float, std::int64_t>(m);
}

}  // namespace unmix::bindings
