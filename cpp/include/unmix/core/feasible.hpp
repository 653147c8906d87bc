#pragma once
#include <armadillo>
#include <cmath>
#include <limits>
#include <vector>

#include "options.hpp"

namespace unmix {

// The set an update rule must keep its factor in: per-column bounds
// lo <= F(:, j) <= hi, and optionally every row on the probability simplex.
template <typename eT>
struct Feasible {
  arma::Col<eT> lo, hi;  // size = number of columns the rule updates
  bool simplex = false;

  static Feasible nonnegative(arma::uword k) { return from(FactorOptions{}, k); }

  static Feasible from(const FactorOptions& o, arma::uword k) {
    Feasible f;
    f.lo = o.lower_cols.is_empty() ? arma::Col<eT>(k, arma::fill::value(eT(o.lower)))
                                   : arma::conv_to<arma::Col<eT>>::from(o.lower_cols);
    f.hi = o.upper_cols.is_empty() ? arma::Col<eT>(k, arma::fill::value(eT(o.upper)))
                                   : arma::conv_to<arma::Col<eT>>::from(o.upper_cols);
    f.simplex = o.simplex;
    return f;
  }
  // The same set restricted to some columns (the free ones).
  Feasible columns(const arma::uvec& cols) const {
    Feasible f;
    f.lo = lo.elem(cols);
    f.hi = hi.elem(cols);
    f.simplex = simplex;
    return f;
  }
  // Moves a starting factor into the set (so the first objective compares
  // like with like): clip to the bounds; rescale rows to sum to one.
  void project(arma::Mat<eT>& F) const {
    for (arma::uword j = 0; j < F.n_cols; ++j)
      F.col(j) = arma::clamp(F.col(j), lo(j), hi(j));
    if (!simplex) return;
    for (arma::uword i = 0; i < F.n_rows; ++i) {
      const eT s = arma::accu(F.row(i));
      if (s > 0)
        F.row(i) /= s;
      else
        F.row(i).fill(eT(1) / eT(F.n_cols));
    }
  }
};

}  // namespace unmix
