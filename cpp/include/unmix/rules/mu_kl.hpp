#pragma once
#include <armadillo>
#include <cmath>

#include "../regularize/penalty.hpp"

namespace unmix::rules {

// Multiplicative update for the Kullback-Leibler loss (Lee & Seung 2001) with
// l1, l2 and the graph term. Jensen's inequality majorizes the divergence in
// each entry by  c_j f - r log f  (r = F~_ij R_ij, R = (M ./ W H^T) times the
// other factor, c_j its column sum); l1 adds l1 f, l2 adds l2/2 f^2 and the
// graph's majorizer gamma d_max f^2 + gamma ((L F~)_ij - 2 d_max F~_ij) f.
// The surrogate a f^2 + b f - r log f is minimized exactly by the positive
// root of 2 a f^2 + b f - r = 0, so every step is monotone.
template <typename eT>
void mu_kl_update(const arma::Row<eT>& colsum, const arma::Mat<eT>& R, arma::Mat<eT>& F,
                  const regularize::Penalty<eT>& penalty) {
  const double a = 0.5 * penalty.l2.lambda + penalty.graph.curvature();
  for (arma::uword j = 0; j < F.n_cols; ++j)
    for (arma::uword i = 0; i < F.n_rows; ++i) {
      const double r = double(F(i, j)) * double(R(i, j));
      const double b = double(colsum[j]) + penalty.l1.lambda + penalty.graph.linear(F, i, j);
      const double disc = std::sqrt(b * b + 8.0 * a * r);
      // The stable form of the positive root for either sign of b.
      const double f = b > 0 ? 2.0 * r / (b + disc) : (a > 0 ? (disc - b) / (4.0 * a) : double(F(i, j)));
      F(i, j) = static_cast<eT>(f);
    }
}

}  // namespace unmix::rules
