#pragma once
#include <algorithm>
#include <armadillo>
#include <cmath>

#include "../core/feasible.hpp"

namespace unmix::rules {

// AO-ADMM (Huang, Sidiropoulos & Liavas 2016): the half-step's problem
//   min_F 1/2 tr(F G F^T) - tr(R^T F)   subject to F in C
// solved by ADMM on the split F = Z, Z carrying the constraint:
//   F~ = (R + rho (Z + U)) (G + rho I)^-1    one inverse of a k x k matrix
//   Z  = proj_C(F~ - U),  U += Z - F~
// with rho = tr(G) / k as the paper recommends. Every constraint is a
// projection, so every combination has a solver: bounds, sum-to-one rows,
// and both at once (the regularizers have already changed G and R).
//
// The problem separates by rows of F, so the result is kept row by row only
// where it lowers the row's objective: the update is monotone whatever the
// number of inner iterations. U starts at zero in every half-step, so the
// rule has no state beyond F and a resumed run is the uninterrupted one.
template <typename eT>
class ADMM {
 public:
  static constexpr const char* name = "admm";
  static constexpr bool supports_bounds = true;
  static constexpr bool supports_simplex = true;
  static constexpr int max_inner = 50;
  static constexpr double inner_tol = 1e-7;

  void update(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& F,
              const Feasible<eT>& feasible) {
    const arma::uword k = G.n_rows;
    const double trace = arma::trace(G);
    const eT rho = eT(trace > 0 ? trace / double(k) : 1.0);
    const arma::Mat<eT> A = G + rho * arma::eye<arma::Mat<eT>>(k, k);
    if (!arma::inv_sympd(inverse_, A)) inverse_ = arma::pinv(A);
    Z_ = F;
    U_.zeros(F.n_rows, F.n_cols);
    // Every step is row by row, so each row stops on its own residuals:
    // a row's result then does not depend on which rows share its process,
    // and the distributed run equals the serial one.
    arma::uvec active = arma::regspace<arma::uvec>(0, F.n_rows == 0 ? 0 : F.n_rows - 1);
    if (F.n_rows == 0) active.reset();
    for (int it = 0; it < max_inner && !active.is_empty(); ++it) {
      const arma::Mat<eT> Z = Z_.rows(active), U = U_.rows(active);
      const arma::Mat<eT> Ft = (R.rows(active) + rho * (Z + U)) * inverse_;
      arma::Mat<eT> Znew = Ft - U;
      feasible.project_exact(Znew);
      U_.rows(active) = U + Znew - Ft;
      Z_.rows(active) = Znew;
      // Primal (Z = F~) and dual (Z steady) residuals, relative to the row.
      const arma::Col<eT> scale = arma::max(arma::sqrt(arma::sum(arma::square(Znew), 1)),
                                            arma::Col<eT>(Znew.n_rows, arma::fill::value(eT(1e-30))));
      const arma::Col<eT> primal = arma::sqrt(arma::sum(arma::square(Znew - Ft), 1));
      const arma::Col<eT> dual = arma::sqrt(arma::sum(arma::square(Znew - Z), 1));
      active = active.elem(arma::find(primal > inner_tol * scale || dual > inner_tol * scale));
    }
    // Row i's objective 1/2 f G f^T - r f^T, for Z and for the current F.
    const arma::Col<eT> q_new = 0.5 * arma::sum((Z_ * G) % Z_, 1) - arma::sum(R % Z_, 1);
    const arma::Col<eT> q_old = 0.5 * arma::sum((F * G) % F, 1) - arma::sum(R % F, 1);
    for (arma::uword i = 0; i < F.n_rows; ++i)
      if (q_new(i) <= q_old(i)) F.row(i) = Z_.row(i);
  }

 private:
  arma::Mat<eT> inverse_, Z_, U_;
};

}  // namespace unmix::rules
