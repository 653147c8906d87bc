#pragma once
#include <armadillo>

#include "../core/feasible.hpp"

namespace unmix::rules {

// Hierarchical ALS (Cichocki & Phan; Gillis & Glineur): each column of F is
// the exact minimizer with the other columns fixed, so every column step, and
// so the whole update, is monotone. Bounds are exact too: the per-column
// problem is separable, so its bounded minimizer is the clipped one.
template <typename eT>
class HALS {
 public:
  static constexpr const char* name = "hals";
  static constexpr bool supports_bounds = true;
  static constexpr bool supports_simplex = false;

  void update(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& F,
              const Feasible<eT>& feasible) {
    for (arma::uword j = 0; j < F.n_cols; ++j) {
      const eT gjj = G(j, j);
      if (!(gjj > 0)) continue;  // the other factor's column is zero: F(:, j) is free, keep it
      step_ = R.col(j) - F * G.col(j);
      eT* f = F.colptr(j);
      const eT* s = step_.memptr();
      const eT lo = feasible.lo(j), hi = feasible.hi(j);
      for (arma::uword i = 0; i < F.n_rows; ++i) {
        const eT v = f[i] + s[i] / gjj;
        f[i] = v < lo ? lo : (v > hi ? hi : v);
      }
    }
  }

 private:
  arma::Col<eT> step_;
};

}  // namespace unmix::rules
