#pragma once
#include <armadillo>
#include <cmath>
#include <limits>
#include <vector>

#include "options.hpp"

namespace unmix {

// The set an update rule must keep its factor in: per-column bounds
// lo <= F(:, j) <= hi, and optionally every row on the probability simplex,
// or row i summing to sums(i) when sums is given (no bounds then).
template <typename eT>
struct Feasible {
  arma::Col<eT> lo, hi;  // size = number of columns the rule updates
  bool simplex = false;
  arma::vec sums;  // per-row sums of this rank's rows with simplex; empty: all one

  // The sum of row `row` (of this rank's factor) on the simplex.
  double sum(arma::uword row) const { return sums.is_empty() ? 1.0 : sums(row); }

  static Feasible nonnegative(arma::uword k) { return from(FactorOptions{}, k); }

  static Feasible from(const FactorOptions& o, arma::uword k) {
    Feasible f;
    f.lo = o.lower_cols.is_empty() ? arma::Col<eT>(k, arma::fill::value(eT(o.lower)))
                                   : arma::conv_to<arma::Col<eT>>::from(o.lower_cols);
    f.hi = o.upper_cols.is_empty() ? arma::Col<eT>(k, arma::fill::value(eT(o.upper)))
                                   : arma::conv_to<arma::Col<eT>>::from(o.upper_cols);
    f.simplex = o.simplex;
    f.sums = o.simplex_sums;
    return f;
  }
  // The same set restricted to some columns (the free ones).
  Feasible columns(const arma::uvec& cols) const {
    Feasible f;
    f.lo = lo.elem(cols);
    f.hi = hi.elem(cols);
    f.simplex = simplex;
    f.sums = sums;
    return f;
  }
  // Moves a starting factor, or its rows from `first` on, into the set (so
  // the first objective compares like with like): clip to the bounds;
  // rescale rows to their sums (with bounds as well, the nearest point of
  // the set).
  void project(arma::Mat<eT>& F, arma::uword first = 0) const {
    if (simplex && bounded()) return project_exact(F);
    for (arma::uword j = 0; j < F.n_cols; ++j)
      F.col(j) = arma::clamp(F.col(j), lo(j), hi(j));
    if (!simplex) return;
    for (arma::uword i = 0; i < F.n_rows; ++i) {
      const eT s = arma::accu(F.row(i)), target = eT(sum(first + i));
      if (s > 0)
        F.row(i) *= target / s;
      else
        F.row(i).fill(target / eT(F.n_cols));
    }
  }

  bool bounded() const {
    return arma::any(lo != eT(0)) || arma::any(hi != std::numeric_limits<eT>::infinity());
  }

  // The Euclidean projection onto the set. Each row of the simplex with
  // bounds is clamp(v - tau, lo, hi) with tau found by bisection on the
  // (monotone) row sum.
  void project_exact(arma::Mat<eT>& F) const {
    const arma::uword k = F.n_cols;
    if (!simplex) {
      for (arma::uword j = 0; j < k; ++j) F.col(j) = arma::clamp(F.col(j), lo(j), hi(j));
      return;
    }
    double top = 0;  // the largest finite upper bound
    for (arma::uword j = 0; j < k; ++j)
      if (std::isfinite(double(hi(j)))) top = std::max(top, double(hi(j)));
    for (arma::uword i = 0; i < F.n_rows; ++i) {
      auto sum_at = [&](double tau) {
        double s = 0;
        for (arma::uword j = 0; j < k; ++j)
          s += std::clamp(double(F(i, j)) - tau, double(lo(j)), double(hi(j)));
        return s;
      };
      // At a every entry is at its upper bound (or >= 1), at b at its lower
      // one; the validation made sum(lo) <= 1 <= sum(hi).
      double a = double(F.row(i).min()) - 1.0 - top, b = double(F.row(i).max());
      for (int it = 0; it < 200 && b - a > 1e-16 * std::max(1.0, std::abs(b)); ++it) {
        const double mid = 0.5 * (a + b);
        (sum_at(mid) > 1.0 ? a : b) = mid;
      }
      const double tau = 0.5 * (a + b);
      double total = 0;
      arma::uword n_inside = 0;
      for (arma::uword j = 0; j < k; ++j) {
        const double x = std::clamp(double(F(i, j)) - tau, double(lo(j)), double(hi(j)));
        F(i, j) = eT(x);
        total += x;
        n_inside += x > lo(j) && x < hi(j);
      }
      // tau is exact to rounding; the entries strictly inside their bounds
      // take up what is left of the sum, so that it is one to rounding.
      if (n_inside > 0 && total != 1.0)
        for (arma::uword j = 0; j < k; ++j)
          if (F(i, j) > lo(j) && F(i, j) < hi(j))
            F(i, j) = std::max(lo(j), eT(F(i, j) + (1.0 - total) / double(n_inside)));
    }
  }
};

}  // namespace unmix
