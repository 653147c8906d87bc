#pragma once
#include <armadillo>
#include <limits>
#include <random>

namespace test {

// Tolerances per element type, as ensmallen's tests do.
template <typename eT> struct Tol;
template <> struct Tol<double> { static constexpr double rel = 1e-9; };
template <> struct Tol<float> { static constexpr double rel = 2e-4; };

// An exactly rank-k non-negative m x n matrix, W (m x k) and H (n x k) known.
template <typename eT>
arma::Mat<eT> low_rank(arma::uword m, arma::uword n, arma::uword k, unsigned seed,
                       double density = 1.0) {
  arma::arma_rng::set_seed(seed);
  arma::Mat<eT> W(m, k, arma::fill::randu), H(n, k, arma::fill::randu);
  if (density < 1.0) {
    // Sparse factors give exact zeros in M.
    W.for_each([&](eT& v) { if (arma::randu() > density) v = 0; });
    H.for_each([&](eT& v) { if (arma::randu() > density) v = 0; });
  }
  return W * H.t();
}

template <typename eT>
arma::Mat<eT> noisy(const arma::Mat<eT>& M, double level, unsigned seed) {
  arma::arma_rng::set_seed(seed);
  arma::Mat<eT> N = M + static_cast<eT>(level) * arma::Mat<eT>(M.n_rows, M.n_cols, arma::fill::randu);
  return N;
}

template <typename eT>
double rel_error(const arma::Mat<eT>& M, const arma::Mat<eT>& W, const arma::Mat<eT>& H) {
  const arma::mat Md = arma::conv_to<arma::mat>::from(M);
  const arma::mat R = Md - arma::conv_to<arma::mat>::from(W) * arma::conv_to<arma::mat>::from(H).t();
  return arma::norm(R, "fro") / arma::norm(Md, "fro");
}

}  // namespace test
