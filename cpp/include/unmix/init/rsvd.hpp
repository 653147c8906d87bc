#pragma once
#include <algorithm>
#include <armadillo>
#include <limits>

#include "counter_rng.hpp"
#include "random.hpp"

namespace unmix::init {

// The data in the caller's natural orientation, N = M or M^T, applied through
// the distributed products. Rows of "row" factors are split like the natural
// rows, rows of "column" factors like the natural columns.
template <typename Products>
struct NaturalOperator {
  using eT = typename Products::eT;
  Products& products;
  bool transposed;

  arma::Mat<eT>& times(const arma::Mat<eT>& B) {  // N * B
    return transposed ? products.trans_times(B) : products.times(B);
  }
  arma::Mat<eT>& trans_times(const arma::Mat<eT>& A) {  // N^T * A
    return transposed ? products.times(A) : products.trans_times(A);
  }
};

// Orthonormalizes the columns of a distributed tall matrix Y in place from its
// Gram matrix alone (SVQB, Stathopoulos & Wu 2002), dropping directions that
// are numerically absent, so rank-deficient data is handled. Two passes
// restore the orthogonality lost to squaring the condition number.
template <typename Products>
void orthonormalize(arma::Mat<typename Products::eT>& Y, const Products& products) {
  using eT = typename Products::eT;
  for (int pass = 0; pass < 2; ++pass) {
    arma::Mat<eT> G;
    products.gram(Y, G);
    arma::vec lambda;
    arma::mat V;
    if (!arma::eig_sym(lambda, V, arma::conv_to<arma::mat>::from(G))) {
      Y.reset();  // cannot happen for a finite Gram matrix; leave nothing rather than garbage
      return;
    }
    const double cut = std::max(lambda.max(), 0.0) * 100.0 * static_cast<double>(G.n_rows) *
                       std::numeric_limits<eT>::epsilon();
    const arma::uvec keep = arma::find(lambda > cut);
    if (keep.is_empty()) {
      Y.set_size(Y.n_rows, 0);
      return;
    }
    const arma::mat T = V.cols(keep) * arma::diagmat(1.0 / arma::sqrt(lambda(keep)));
    Y = Y * arma::conv_to<arma::Mat<eT>>::from(T);
  }
}

template <typename eT>
struct TruncatedSVD {
  arma::Mat<eT> U, V;  // owned rows of the natural row / column singular vectors
  arma::vec s;         // descending; zero where the data has lower rank than k
};

// Randomized truncated SVD (Halko, Martinsson & Tropp 2011) with power
// iterations, built only from the data products and Gram matrices, so it runs
// distributed unchanged and gives the same answer for any split of the rows.
template <typename Products>
TruncatedSVD<typename Products::eT> randomized_svd(
    NaturalOperator<Products> N, arma::uword k, arma::uword n_power_iter,
    std::uint64_t seed, arma::uword col_first, arma::uword col_count,
    arma::uword n_rows, arma::uword n_cols) {
  using eT = typename Products::eT;
  const arma::uword l = std::min<arma::uword>(k + 10, std::min(n_rows, n_cols));
  const CounterRng rng(seed, Stream::sketch);
  arma::Mat<eT> Z(col_count, l);
  for (arma::uword j = 0; j < l; ++j)
    for (arma::uword i = 0; i < col_count; ++i)
      Z(i, j) = static_cast<eT>(rng.normal(col_first + i, j));

  arma::Mat<eT> Y = N.times(Z);
  // Zero where the data has no more directions (an all-zero matrix has none).
  TruncatedSVD<eT> out;
  out.U.zeros(Y.n_rows, k);
  out.V.zeros(col_count, k);
  out.s.zeros(k);
  orthonormalize(Y, N.products);
  for (arma::uword it = 0; it < n_power_iter && Y.n_cols > 0; ++it) {
    Z = N.trans_times(Y);
    orthonormalize(Z, N.products);
    if (Z.n_cols == 0) return out;
    Y = N.times(Z);
    orthonormalize(Y, N.products);
  }
  if (Y.n_cols == 0) return out;
  Z = N.trans_times(Y);  // N ~= Y Z^T with Y orthonormal

  // SVD of Z^T from the small Gram matrix: Z^T Z = Q S^2 Q^T.
  arma::Mat<eT> C;
  N.products.gram(Z, C);
  arma::vec lambda;
  arma::mat Q;
  if (!arma::eig_sym(lambda, Q, arma::conv_to<arma::mat>::from(C))) return out;
  const arma::uword r = std::min<arma::uword>(k, lambda.n_elem);
  const double tiny = std::max(lambda.max(), 0.0) * std::numeric_limits<eT>::epsilon();
  for (arma::uword j = 0; j < r; ++j) {
    const arma::uword src = lambda.n_elem - 1 - j;  // eig_sym sorts ascending
    if (!(lambda(src) > tiny)) break;
    const double sigma = std::sqrt(lambda(src));
    const arma::Col<eT> q = arma::conv_to<arma::Col<eT>>::from(Q.col(src));
    out.s(j) = sigma;
    out.U.col(j) = Y * q;
    out.V.col(j) = (Z * q) / static_cast<eT>(sigma);
  }
  return out;
}

}  // namespace unmix::init
