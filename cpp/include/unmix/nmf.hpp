#pragma once
#include <armadillo>
#include <cmath>
#include <sstream>
#include <string>

#include "comm/serial.hpp"
#include "core/driver.hpp"
#include "core/error.hpp"
#include "data/dense.hpp"
#include "data/sparse.hpp"
#include "solvers.hpp"

namespace unmix {

// Named drivers for the common combinations.
template <typename eT, typename Comm = comm::Serial>
using MUDriver = Driver<eT, rules::MU, Comm>;
template <typename eT, typename Comm = comm::Serial>
using HALSDriver = Driver<eT, rules::HALS, Comm>;
template <typename eT, typename Comm = comm::Serial>
using BPPDriver = Driver<eT, rules::BPP, Comm>;

namespace detail {

inline std::string shape(arma::uword r, arma::uword c) {
  std::ostringstream s;
  s << "(" << r << ", " << c << ")";
  return s.str();
}

inline void check_penalty(double v, const char* name) {
  if (!(v >= 0.0) || !std::isfinite(v)) throw_invalid("unmix::nmf", name, "finite and >= 0", v);
}

template <typename eT>
void check_factor(const arma::Mat<eT>* F, arma::uword rows, arma::uword k, const char* name) {
  if (F == nullptr)
    throw_invalid("unmix::nmf", name, "given when init is 'custom'", "nothing");
  if (F->n_rows != rows || F->n_cols != k)
    throw_invalid("unmix::nmf", std::string(name) + ".shape", "equal to " + shape(rows, k),
                  shape(F->n_rows, F->n_cols));
  if (!F->is_finite()) throw_invalid("unmix::nmf", name, "finite", "NaN or infinity");
  if (F->n_elem > 0 && F->min() < 0)
    throw_invalid("unmix::nmf", name, "non-negative", F->min());
}

inline void check_constraints(const FactorOptions& f, const std::string& name, arma::uword rows,
                              arma::uword k, arma::uword local_rows) {
  const std::string where = "unmix::nmf";
  if (!std::isfinite(f.lower) || f.lower < 0)
    throw_invalid(where, name + ".lower", "finite and >= 0", f.lower);
  if (!(f.upper > f.lower)) throw_invalid(where, name + ".upper", "> lower", f.upper);
  for (const auto* v : {&f.lower_cols, &f.upper_cols})
    if (!v->is_empty() && v->n_elem != k)
      throw_invalid(where, name + (v == &f.lower_cols ? ".lower_cols" : ".upper_cols"),
                    "of length k = " + std::to_string(k), v->n_elem);
  if (!f.lower_cols.is_empty() && (!f.lower_cols.is_finite() || f.lower_cols.min() < 0))
    throw_invalid(where, name + ".lower_cols", "finite and >= 0", "a negative or non-finite value");
  if (!f.lower_cols.is_empty() && !f.upper_cols.is_empty() && arma::any(f.upper_cols <= f.lower_cols))
    throw_invalid(where, name + ".upper_cols", "> lower_cols in every column", "a column with upper <= lower");
  if (!f.simplex_sums.is_empty()) {
    if (!f.simplex)
      throw_invalid(where, name + ".simplex_sums", "given only with simplex", "simplex = false");
    if (f.simplex_sums.n_elem != local_rows)
      throw_invalid(where, name + ".simplex_sums", "of length " + std::to_string(local_rows) +
                    " (one sum per row on this rank)", f.simplex_sums.n_elem);
    if (!f.simplex_sums.is_finite() || f.simplex_sums.min() < 0)
      throw_invalid(where, name + ".simplex_sums", "finite and >= 0", "a negative or non-finite value");
    if (f.bounded())
      throw_invalid(where, name + ".simplex_sums", "used without bounds on the same factor",
                    "a combination");
  }
  if (f.simplex && !f.fixed_cols.empty())
    throw_invalid(where, name + ".simplex", "used without fixed columns on the same factor",
                  "a combination");
  if (f.simplex && f.bounded()) {
    // Rows on the simplex within the bounds exist only if the bounds allow a sum of one.
    const arma::vec lo = f.lower_cols.is_empty() ? arma::vec(k, arma::fill::value(f.lower)) : f.lower_cols;
    const arma::vec hi = f.upper_cols.is_empty() ? arma::vec(k, arma::fill::value(f.upper)) : f.upper_cols;
    if (arma::accu(lo) > 1.0 || arma::accu(hi) < 1.0)
      throw_invalid(where, name + " bounds", "such that sum(lower) <= 1 <= sum(upper) with sum-to-one",
                    "sum(lower) = " + std::to_string(arma::accu(lo)) + ", sum(upper) = " +
                        std::to_string(arma::accu(hi)));
  }
  check_penalty(f.smooth, (name + ".smooth").c_str());
  check_penalty(f.minvol, (name + ".minvol").c_str());
  if (!(f.minvol_delta > 0) || !std::isfinite(f.minvol_delta))
    throw_invalid(where, name + ".minvol_delta", "finite and > 0", f.minvol_delta);
  if (f.smooth > 0) {
    if (!f.graph) throw_invalid(where, name + ".graph", "given when smooth > 0", "nothing");
    if (f.graph->n_rows != rows || f.graph->n_cols != rows)
      throw_invalid(where, name + ".graph.shape", "equal to " + shape(rows, rows),
                    shape(f.graph->n_rows, f.graph->n_cols));
  }
  std::vector<bool> seen(k, false);
  for (arma::uword c : f.fixed_cols) {
    if (c >= k || seen[c])
      throw_invalid(where, name + ".fixed_cols", "distinct column indices below k = " + std::to_string(k), c);
    seen[c] = true;
  }
  if (!f.fixed_cols.empty()) {
    if (f.fixed_cols.size() >= k)
      throw_invalid(where, name + ".fixed_cols", "fewer than k columns (some must be learned)",
                    f.fixed_cols.size());
    if (f.fixed_values.n_rows != local_rows || f.fixed_values.n_cols != f.fixed_cols.size())
      throw_invalid(where, name + ".fixed_values.shape",
                    "equal to " + shape(local_rows, f.fixed_cols.size()),
                    shape(f.fixed_values.n_rows, f.fixed_values.n_cols));
    if (!f.fixed_values.is_finite() || (f.fixed_values.n_elem && f.fixed_values.min() < 0))
      throw_invalid(where, name + ".fixed_values", "finite and >= 0", "a negative or non-finite value");
  }
}

// A state to resume from must fit the problem: the same factor shapes on
// this rank, finite and non-negative factors, the values fixed at start.
template <typename eT>
void check_resume(const State<eT>& s, const Options& opt, arma::uword k, arma::uword wr,
                  arma::uword hr) {
  const std::string where = "unmix::nmf: the state to resume";
  if (s.W.n_rows != wr || s.W.n_cols != k || s.H.n_rows != hr || s.H.n_cols != k)
    throw std::invalid_argument(where + " has factors of shapes " + shape(s.W.n_rows, s.W.n_cols) +
                                " and " + shape(s.H.n_rows, s.H.n_cols) + ", expected " +
                                shape(wr, k) + " and " + shape(hr, k) +
                                " (another problem, k or process grid)");
  if (!s.W.is_finite() || !s.H.is_finite() || (s.W.n_elem && s.W.min() < 0) ||
      (s.H.n_elem && s.H.min() < 0))
    throw std::invalid_argument(where + " has factors that are not finite and non-negative");
  if (s.iteration < 1 || s.objective.size() != std::size_t(s.iteration) + 1 ||
      s.rel_error.size() != s.objective.size() || s.fixed_at_start.size() != 2)
    throw std::invalid_argument(where + " is inconsistent: iteration " + std::to_string(s.iteration) +
                                " with " + std::to_string(s.objective.size()) + " objective values");
  for (const auto* g : {&s.gram_W, &s.gram_H})
    if (!g->is_empty() && (g->n_rows != k || g->n_cols != k || !g->is_finite()))
      throw std::invalid_argument(where + " has Gram matrices that are not finite " + shape(k, k));
  // Equal: the run had ended there; resuming gives its result.
  if (s.iteration > opt.max_iter)
    throw_invalid("unmix::nmf", "max_iter", ">= the " + std::to_string(s.iteration) +
                  " iterations already done by the state to resume", opt.max_iter);
}

}  // namespace detail

// Checks every option against the problem size (global m x n, this rank's
// factor rows wr and hr) and throws std::invalid_argument naming the option.
template <typename eT>
void validate(const Options& opt, arma::uword m, arma::uword n, arma::uword k,
              const arma::Mat<eT>* W0, const arma::Mat<eT>* H0, arma::uword wr,
              arma::uword hr) {
  if (m == 0 || n == 0)
    throw_invalid("unmix::nmf", opt.data_name, "a non-empty matrix", "shape " + detail::shape(m, n));
  if (k < 1) throw_invalid("unmix::nmf", "k", ">= 1", k);
  const bool svd_init = opt.init == Init::nndsvd || opt.init == Init::nndsvda ||
                        opt.init == Init::nndsvdar;
  if (svd_init && k > std::min(m, n))
    throw_invalid("unmix::nmf", "k", "<= min(m, n) = " + std::to_string(std::min(m, n)) +
                      " for init '" + to_string(opt.init) + "' (use init 'random')", k);
  if (opt.max_iter < 1) throw_invalid("unmix::nmf", "max_iter", ">= 1", opt.max_iter);
  if (!(opt.tol >= 0.0) || !std::isfinite(opt.tol))
    throw_invalid("unmix::nmf", "tol", "finite and >= 0", opt.tol);
  if (!(opt.time_limit > 0.0)) throw_invalid("unmix::nmf", "time_limit", "> 0 seconds", opt.time_limit);
  detail::check_penalty(opt.W.l1, "W.l1");
  detail::check_penalty(opt.W.l2, "W.l2");
  detail::check_penalty(opt.H.l1, "H.l1");
  detail::check_penalty(opt.H.l2, "H.l2");
  if (opt.W.fixed && opt.H.fixed)
    throw_invalid("unmix::nmf", "W.fixed and H.fixed", "not both true", "both");
  if (opt.init == Init::custom) {
    detail::check_factor(W0, wr, k, "W");
    detail::check_factor(H0, hr, k, "H");
  }
  detail::check_constraints(opt.W, opt.W.name.empty() ? "W" : opt.W.name, m, k, wr);
  detail::check_constraints(opt.H, opt.H.name.empty() ? "H" : opt.H.name, n, k, hr);
}

// What only some rules can do exactly is refused with the names of those
// that can.
template <template <typename> class Rule>
void check_support(const Options& opt) {
  if (opt.loss == Loss::kl && std::string(Rule<double>::name) != "mu")
    throw std::invalid_argument(std::string("unmix::nmf: the KL loss is solved by solver 'mu', got '") +
                                Rule<double>::name + "'");
  // Extrapolation needs half-steps that solve their problem (near)
  // exactly: from an extrapolated start, one HALS sweep or one MU step
  // lands where the start leads (measured: worse fits more often than not
  // once penalties are on), and MU cannot leave the zeros the projection
  // makes.
  const std::string rule = Rule<double>::name;
  if (opt.extrapolate && (opt.loss == Loss::kl || (rule != "bpp" && rule != "admm")))
    throw std::invalid_argument("unmix::nmf: extrapolate works with the Frobenius loss and solvers "
                                "'bpp' or 'admm', whose half-steps are exact, got solver '" + rule + "'" +
                                (opt.loss == Loss::kl ? " with the KL loss" : ""));
  for (const auto* f : {&opt.W, &opt.H}) {
    const std::string name = !f->name.empty() ? f->name : (f == &opt.W ? "W" : "H");
    if (f->bounded() && !Rule<double>::supports_bounds)
      throw std::invalid_argument("unmix::nmf: bounds on " + name +
                                  " are not supported by solver '" + Rule<double>::name +
                                  "'; use 'hals', 'mu' or 'admm'");
    if (f->bounded() && f->simplex && opt.loss != Loss::kl && std::string(Rule<double>::name) != "admm")
      throw std::invalid_argument("unmix::nmf: bounds together with sum-to-one on " + name +
                                  " are solved by solver 'admm' (or 'mu' with the KL loss), not '" +
                                  Rule<double>::name + "'");
    if (f->minvol > 0 && opt.loss == Loss::kl)
      throw std::invalid_argument("unmix::nmf: minimum-volume is not available with the KL loss");
    if (f->minvol > 0 && std::string(Rule<double>::name) == "mu")
      throw std::invalid_argument("unmix::nmf: minimum-volume on " + name +
                                  " is not supported by solver 'mu'; use 'bpp', 'hals' or 'admm'");
    if (f->simplex && !Rule<double>::supports_simplex)
      throw std::invalid_argument("unmix::nmf: the sum-to-one constraint on " + name +
                                  " is not supported by solver '" + Rule<double>::name +
                                  "'; use 'bpp', 'mu' or 'admm'");
  }
}

// Factors this rank's block of a distributed (or, with the serial
// communicator, the whole) matrix: the general entry point.
template <typename Data, typename Comm>
Result<typename Data::elem_type> nmf(const Data& data, const Comm& comm, arma::uword m,
                                     arma::uword n, arma::uword k, const Options& opt,
                                     const arma::Mat<typename Data::elem_type>* W0,
                                     const arma::Mat<typename Data::elem_type>* H0,
                                     const Callback& callback = {},
                                     const Checkpointing<typename Data::elem_type>& checkpointing = {}) {
  using eT = typename Data::elem_type;
  const arma::uword wr = comm.W_rows(m).count, hr = comm.H_rows(n).count;
  // A resumed run takes its factors from the state, not from the init.
  Options checked = opt;
  if (checkpointing.resume && checked.init == Init::custom) checked.init = Init::random;
  validate(checked, m, n, k, W0, H0, wr, hr);
  if (checkpointing.resume) detail::check_resume(*checkpointing.resume, opt, k, wr, hr);
  if (checkpointing.every < 0) throw_invalid("unmix::nmf", "checkpoint every", ">= 0 iterations", checkpointing.every);
  if (!(checkpointing.seconds > 0))
    throw_invalid("unmix::nmf", "checkpoint seconds", "> 0", checkpointing.seconds);
  return with_rule(opt.solver, [&](auto tag) {
    using Tag = decltype(tag);
    check_support<Tag::template rule>(opt);
    return Driver<eT, Tag::template rule, Comm>(opt).run(data, comm, m, n, k, W0, H0, callback,
                                                       checkpointing);
  });
}

// M (m x n, dense or sparse) ~= W H^T with W (m x k) and H (n x k) >= 0.
template <typename eT>
Result<eT> nmf(const arma::Mat<eT>& M, arma::uword k, const Options& opt = {},
               const Callback& callback = {}, const Checkpointing<eT>& checkpointing = {}) {
  return nmf(data::Dense<eT>(M), comm::Serial{}, M.n_rows, M.n_cols, k, opt, nullptr,
             nullptr, callback, checkpointing);
}

template <typename eT>
Result<eT> nmf(const arma::SpMat<eT>& M, arma::uword k, const Options& opt = {},
               const Callback& callback = {}, const Checkpointing<eT>& checkpointing = {}) {
  return nmf(data::Sparse<eT>(M), comm::Serial{}, M.n_rows, M.n_cols, k, opt, nullptr,
             nullptr, callback, checkpointing);
}

// Starting from the given factors (opt.init is taken as Init::custom).
template <typename Matrix, typename eT>
Result<eT> nmf(const Matrix& M, const arma::Mat<eT>& W0, const arma::Mat<eT>& H0,
               Options opt = {}, const Callback& callback = {}) {
  opt.init = Init::custom;
  if constexpr (std::is_same_v<Matrix, arma::SpMat<eT>>)
    return nmf(data::Sparse<eT>(M), comm::Serial{}, M.n_rows, M.n_cols, W0.n_cols, opt, &W0, &H0, callback);
  else
    return nmf(data::Dense<eT>(M), comm::Serial{}, M.n_rows, M.n_cols, W0.n_cols, opt, &W0, &H0, callback);
}

}  // namespace unmix
