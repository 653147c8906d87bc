#pragma once
#include <algorithm>
#include <armadillo>
#include <limits>
#include <vector>

#include "../core/feasible.hpp"

namespace unmix::rules {

// Multiplicative update (Lee & Seung). Splitting R = R+ - R- gives the
// majorization-minimization step  F <- F .* R+ ./ (F G + R-),  which is
// monotone for any R (R- carries the l1 weight, as in the usual
// "lambda in the denominator" form) and keeps F >= 0 without clipping.
// The surrogate behind it is separable, with curvature d = (F G + R-) ./ F,
// so constraints are met exactly by minimizing the surrogate over them:
// bounds by clipping, the simplex by a d-weighted projection.
template <typename eT>
class MU {
 public:
  static constexpr const char* name = "mu";
  static constexpr bool supports_bounds = true;
  static constexpr bool supports_simplex = true;

  void update(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& F,
              const Feasible<eT>& feasible) {
    FG_ = F * G;
    const eT tiny = std::numeric_limits<eT>::min();
    if (feasible.simplex) curvature_.set_size(F.n_rows, F.n_cols);
    for (arma::uword j = 0; j < F.n_cols; ++j) {
      eT* f = F.colptr(j);
      const eT* r = R.colptr(j);
      const eT* d = FG_.colptr(j);
      const eT lo = feasible.lo(j), hi = feasible.hi(j);
      for (arma::uword i = 0; i < F.n_rows; ++i) {
        const eT num = r[i] > 0 ? r[i] : eT(0);
        const eT den = d[i] + (r[i] < 0 ? -r[i] : eT(0));
        if (feasible.simplex) curvature_(i, j) = f[i] > 0 ? den / f[i] : eT(0);
        const eT v = den > tiny ? f[i] * (num / den) : eT(0);
        f[i] = v < lo ? lo : (v > hi ? hi : v);
      }
    }
    if (feasible.simplex)
      for (arma::uword i = 0; i < F.n_rows; ++i) project_row(F, i);
  }

 private:
  // argmin sum_j d_j / 2 (x_j - u_j)^2 over the simplex, for the variables
  // with d_j > 0 (an entry at zero stays there, as MU would keep it).
  // x_j = max(0, u_j - tau / d_j) with tau found between the sorted
  // breakpoints u_j d_j.
  void project_row(arma::Mat<eT>& F, arma::uword i) {
    const arma::uword k = F.n_cols;
    order_.clear();
    for (arma::uword j = 0; j < k; ++j)
      if (curvature_(i, j) > 0) order_.push_back(j);
    if (order_.empty()) {
      for (arma::uword j = 0; j < k; ++j) F(i, j) = eT(1) / eT(k);
      return;
    }
    std::sort(order_.begin(), order_.end(), [&](arma::uword a, arma::uword b) {
      return F(i, a) * curvature_(i, a) > F(i, b) * curvature_(i, b);
    });
    double sum_u = 0, sum_inv_d = 0, tau = 0;
    for (std::size_t t = 0; t < order_.size(); ++t) {
      const arma::uword j = order_[t];
      sum_u += F(i, j);
      sum_inv_d += 1.0 / curvature_(i, j);
      tau = (sum_u - 1.0) / sum_inv_d;
      const double next = t + 1 < order_.size()
                              ? double(F(i, order_[t + 1]) * curvature_(i, order_[t + 1]))
                              : -std::numeric_limits<double>::infinity();
      if (tau >= next) break;
    }
    double total = 0;
    for (arma::uword j = 0; j < k; ++j) {
      const double dj = curvature_(i, j);
      const double x = dj > 0 ? std::max(0.0, double(F(i, j)) - tau / dj) : 0.0;
      F(i, j) = eT(x);
      total += x;
    }
    if (total > 0) F.row(i) /= eT(total);  // remove rounding from the sum
  }

  arma::Mat<eT> FG_, curvature_;
  std::vector<arma::uword> order_;
};

}  // namespace unmix::rules
