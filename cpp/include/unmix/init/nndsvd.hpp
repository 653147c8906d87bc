#pragma once
#include <armadillo>
#include <cmath>

#include "../core/options.hpp"
#include "counter_rng.hpp"
#include "random.hpp"
#include "rsvd.hpp"

namespace unmix::init {

// Non-negative double SVD (Boutsidis & Gallopoulos, Pattern Recognition 41,
// 2008): each singular pair is replaced by the larger of its positive and
// negative parts, scaled to carry the same energy. Variants fill the zeros
// this leaves with the entry size of a factor whose product has the data's
// mean, sqrt(mean / k) (nndsvda), or 1 % random values of it (nndsvdar),
// which MU needs because it can never move an entry away from zero. (The
// data mean itself, as scikit-learn fills, is not of the factors' scale: the
// start would change with the units of the data.)
template <typename Comm, typename eT>
void nndsvd(const TruncatedSVD<eT>& svd, Init variant, double mean, std::uint64_t seed,
            const Comm& comm, arma::uword row_first, arma::uword col_first,
            arma::Mat<eT>& A, arma::Mat<eT>& B) {
  const arma::uword k = svd.s.n_elem;
  A.zeros(svd.U.n_rows, k);
  B.zeros(svd.V.n_rows, k);

  // Global norms of the positive and negative parts of every vector, in one
  // reduction: rows are |u+|^2, |u-|^2, |v+|^2, |v-|^2.
  arma::Mat<eT> norms(4, k, arma::fill::zeros);
  for (arma::uword j = 0; j < k; ++j) {
    for (arma::uword i = 0; i < svd.U.n_rows; ++i) {
      const eT u = svd.U(i, j);
      norms(u > 0 ? 0 : 1, j) += u * u;
    }
    for (arma::uword i = 0; i < svd.V.n_rows; ++i) {
      const eT v = svd.V(i, j);
      norms(v > 0 ? 2 : 3, j) += v * v;
    }
  }
  comm.all_reduce(norms);

  for (arma::uword j = 0; j < k; ++j) {
    if (!(svd.s(j) > 0)) continue;
    const double up = std::sqrt(double(norms(0, j))), un = std::sqrt(double(norms(1, j)));
    const double vp = std::sqrt(double(norms(2, j))), vn = std::sqrt(double(norms(3, j)));
    // The leading pair of a non-negative matrix is one-signed: take |u|, |v|.
    const bool leading = (j == 0);
    const double mp = up * vp, mn = un * vn;
    const bool positive = mp >= mn;
    double nu = positive ? up : un, nv = positive ? vp : vn, sigma = positive ? mp : mn;
    if (leading) {
      nu = std::sqrt(up * up + un * un);
      nv = std::sqrt(vp * vp + vn * vn);
      sigma = nu * nv;
    }
    if (!(sigma > 0)) continue;
    const double w = std::sqrt(svd.s(j) * sigma);
    for (arma::uword i = 0; i < svd.U.n_rows; ++i) {
      const double u = svd.U(i, j);
      const double part = leading ? std::abs(u) : (positive ? std::max(u, 0.0) : std::max(-u, 0.0));
      A(i, j) = static_cast<eT>(w * part / nu);
    }
    for (arma::uword i = 0; i < svd.V.n_rows; ++i) {
      const double v = svd.V(i, j);
      const double part = leading ? std::abs(v) : (positive ? std::max(v, 0.0) : std::max(-v, 0.0));
      B(i, j) = static_cast<eT>(w * part / nv);
    }
  }

  if (variant == Init::nndsvd) return;
  const double level = std::sqrt(std::max(mean, 0.0) / static_cast<double>(k));
  const CounterRng rows_rng(seed, Stream::fill), cols_rng(seed + 1, Stream::fill);
  auto fill_zeros = [&](arma::Mat<eT>& F, const CounterRng& rng, arma::uword first) {
    for (arma::uword j = 0; j < F.n_cols; ++j)
      for (arma::uword i = 0; i < F.n_rows; ++i)
        if (F(i, j) == eT(0))
          F(i, j) = static_cast<eT>(variant == Init::nndsvda
                                        ? level
                                        : level * 0.01 * rng.uniform(first + i, j));
  };
  fill_zeros(A, rows_rng, row_first);
  fill_zeros(B, cols_rng, col_first);
}

}  // namespace unmix::init
