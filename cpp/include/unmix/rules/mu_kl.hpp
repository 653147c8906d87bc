#pragma once
#include <algorithm>
#include <armadillo>
#include <cmath>
#include <limits>

#include "../core/feasible.hpp"
#include "../regularize/penalty.hpp"

namespace unmix::rules {

// Multiplicative update for the Kullback-Leibler loss (Lee & Seung 2001) with
// l1, l2, the graph term and every hard constraint. Jensen's inequality
// majorizes the divergence in each entry by  c_j f - r log f  (r = F~_ij
// R_ij, R = (M ./ W H^T) times the other factor, c_j its column sum); l1 adds
// l1 f, l2 adds l2/2 f^2 and the graph's majorizer gamma c_j beta / 2 f^2 +
// gamma c_j ((L F~)_ij - beta F~_ij) f (regularize/graph.hpp; c_j = 1 unless
// the term is scaled, whose ridge on the other factor adds to a per column
// too). The surrogate a_j f^2 + b f - r log f is
// separable and convex, so it is minimized exactly over the constraints too:
// over bounds by clipping its minimizer, over a row on the simplex by the
// multiplier mu of sum f = 1 (or the row's own sum, feasible.sums), each
// entry the minimizer with b + mu, clipped.
// Every step is therefore monotone.
template <typename eT>
class MUKL {
 public:
  // F's columns `cols` are updated (the others are known endmembers).
  void update(const arma::Row<eT>& colsum, const arma::Mat<eT>& R, arma::Mat<eT>& F,
              const regularize::Penalty<eT>& penalty, const Feasible<eT>& feasible,
              const arma::uvec& cols) {
    // The quadratic coefficient per column: l2, the graph's majorizer, and
    // the ridge of the other factor's scaled graph term.
    a_.set_size(F.n_cols);
    for (arma::uword j = 0; j < F.n_cols; ++j)
      a_[j] = 0.5 * penalty.l2.lambda + penalty.graph.curvature(j) +
              (penalty.ridge.is_empty() ? 0.0 : 0.5 * penalty.ridge[j]);
    if (feasible.simplex) {
      r_.set_size(F.n_cols);
      b_.set_size(F.n_cols);
      for (arma::uword i = 0; i < F.n_rows; ++i) {
        for (arma::uword j = 0; j < F.n_cols; ++j) {
          r_[j] = double(F(i, j)) * double(R(i, j));
          b_[j] = double(colsum[j]) + penalty.l1.lambda + penalty.graph.linear(F, i, j);
        }
        simplex_row(feasible, F, i);
      }
      return;
    }
    for (arma::uword j : cols)
      for (arma::uword i = 0; i < F.n_rows; ++i) {
        const double r = double(F(i, j)) * double(R(i, j));
        const double b = double(colsum[j]) + penalty.l1.lambda + penalty.graph.linear(F, i, j);
        // Nothing pulls on an entry whose component carries no weight.
        const double a = a_[j];
        const double f = (a > 0 || b > 0 || r > 0) ? argmin(a, b, r) : double(F(i, j));
        F(i, j) = static_cast<eT>(std::clamp(f, double(feasible.lo(j)), double(feasible.hi(j))));
      }
  }

 private:
  // The minimizer over f >= 0 of a f^2 + b f - r log f (a, r >= 0): the
  // positive root of 2 a f^2 + b f - r = 0 in its stable form for either
  // sign of b; infinite where the surrogate has no lower bound.
  static double argmin(double a, double b, double r) {
    const double inf = std::numeric_limits<double>::infinity();
    if (r <= 0) return b >= 0 ? 0.0 : (a > 0 ? -b / (2 * a) : inf);
    const double disc = std::sqrt(b * b + 8.0 * a * r);
    return b > 0 ? 2.0 * r / (b + disc) : (a > 0 ? (disc - b) / (4.0 * a) : inf);
  }

  // Row i on the simplex (within the bounds): sum_j clip(argmin(b_j + mu))
  // falls as mu grows, so mu is bracketed by doubling and bisected.
  void simplex_row(const Feasible<eT>& feasible, arma::Mat<eT>& F, arma::uword i) {
    const arma::uword k = F.n_cols;
    const double target = feasible.sum(i);
    if (target <= 0) {  // a row that must sum to zero (no bounds with sums)
      F.row(i).zeros();
      return;
    }
    auto entry = [&](arma::uword j, double mu) {
      return std::clamp(argmin(a_[j], b_[j] + mu, r_[j]), double(feasible.lo(j)), double(feasible.hi(j)));
    };
    auto sum_at = [&](double mu) {
      double s = 0;
      for (arma::uword j = 0; j < k; ++j) s += entry(j, mu);
      return s;
    };
    if (arma::all(a_ == 0) && arma::all(r_ == 0)) return cheapest(feasible, F, i, target);  // a linear surrogate
    const double b_min = b_.min();
    double step = std::max({arma::abs(b_).max(), arma::accu(r_), 1e-300});
    double lo = -b_min, hi = -b_min + step;
    for (double s = step; sum_at(lo) < target && std::isfinite(lo); s *= 2) lo -= s;
    for (double s = step; sum_at(hi) > target && std::isfinite(hi); s *= 2) hi += s;
    for (int it = 0; it < 200 && hi - lo > 1e-15 * std::max(std::abs(lo), std::abs(hi)); ++it) {
      const double mid = 0.5 * (lo + hi);
      (sum_at(mid) >= target ? lo : hi) = mid;
    }
    // The entries strictly inside their bounds take up the rounding left in
    // the sum, so that it is the target to rounding.
    double total = 0;
    arma::uword inside = 0;
    for (arma::uword j = 0; j < k; ++j) {
      F(i, j) = eT(entry(j, hi));
      total += double(F(i, j));
      inside += F(i, j) > feasible.lo(j) && F(i, j) < feasible.hi(j);
    }
    if (inside > 0 && total != target)
      for (arma::uword j = 0; j < k; ++j)
        if (F(i, j) > feasible.lo(j) && F(i, j) < feasible.hi(j))
          F(i, j) = std::max(feasible.lo(j), eT(double(F(i, j)) + (target - total) / double(inside)));
  }

  // min b^T f on the simplex within the bounds (a row with no data pulling
  // on it): the lower bounds, then the rest of the row's sum to the
  // cheapest components first.
  void cheapest(const Feasible<eT>& feasible, arma::Mat<eT>& F, arma::uword i, double target) {
    double left = target;
    for (arma::uword j = 0; j < F.n_cols; ++j) {
      F(i, j) = feasible.lo(j);
      left -= double(feasible.lo(j));
    }
    for (arma::uword j : arma::uvec(arma::sort_index(b_))) {
      const double add = std::min(left, double(feasible.hi(j)) - double(feasible.lo(j)));
      F(i, j) = eT(double(F(i, j)) + add);
      left -= add;
    }
  }

  arma::vec a_, r_, b_;
};

}  // namespace unmix::rules
