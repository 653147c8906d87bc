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
}

// Factors this rank's block of a distributed (or, with the serial
// communicator, the whole) matrix: the general entry point.
template <typename Data, typename Comm>
Result<typename Data::elem_type> nmf(const Data& data, const Comm& comm, arma::uword m,
                                     arma::uword n, arma::uword k, const Options& opt,
                                     const arma::Mat<typename Data::elem_type>* W0,
                                     const arma::Mat<typename Data::elem_type>* H0,
                                     const Callback& callback = {}) {
  using eT = typename Data::elem_type;
  validate(opt, m, n, k, W0, H0, comm.W_rows(m).count, comm.H_rows(n).count);
  return with_rule(opt.solver, [&](auto tag) {
    using Tag = decltype(tag);
    return Driver<eT, Tag::template rule, Comm>(opt).run(data, comm, m, n, k, W0, H0, callback);
  });
}

// M (m x n, dense or sparse) ~= W H^T with W (m x k) and H (n x k) >= 0.
template <typename eT>
Result<eT> nmf(const arma::Mat<eT>& M, arma::uword k, const Options& opt = {},
               const Callback& callback = {}) {
  return nmf(data::Dense<eT>(M), comm::Serial{}, M.n_rows, M.n_cols, k, opt, nullptr,
             nullptr, callback);
}

template <typename eT>
Result<eT> nmf(const arma::SpMat<eT>& M, arma::uword k, const Options& opt = {},
               const Callback& callback = {}) {
  return nmf(data::Sparse<eT>(M), comm::Serial{}, M.n_rows, M.n_cols, k, opt, nullptr,
             nullptr, callback);
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
