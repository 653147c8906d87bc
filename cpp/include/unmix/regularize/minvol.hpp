#pragma once
#include <armadillo>
#include <cmath>

namespace unmix::regularize {

// Minimum volume of the endmembers: lambda log det(F^T F + delta I), the
// remedy for NMF's non-uniqueness when pure pixels are rare (Fu et al. 2016;
// Leplat, Gillis & Ang 2020). log det is concave in F^T F, so its tangent at
// the current F~ majorizes it:
//   log det(F^T F + delta I) <= const + tr(A (F^T F)),  A = (F~^T F~ + delta I)^-1,
// a quadratic in F that adds 2 lambda A to G. The half-step then minimizes a
// majorizer exactly (bpp, hals), so the objective stays monotone. delta is
// fixed at the first half-step, relative to the factor's scale, so that the
// penalty does not change under the run.
template <typename eT>
class MinVol {
 public:
  MinVol() = default;
  MinVol(double lambda, double delta_rel) : lambda_(lambda), delta_rel_(delta_rel) {}
  bool active() const { return lambda_ > 0; }

  // own_gram: the global F^T F of the factor being updated (start() has run).
  void apply(arma::Mat<eT>& G, const arma::Mat<eT>& own_gram) const {
    if (!active()) return;
    const arma::mat gram = arma::conv_to<arma::mat>::from(own_gram);
    arma::mat A;
    if (!arma::inv_sympd(A, gram + delta_ * arma::eye(gram.n_rows, gram.n_cols)))
      A = arma::pinv(gram + delta_ * arma::eye(gram.n_rows, gram.n_cols));
    G += arma::conv_to<arma::Mat<eT>>::from(2.0 * lambda_ * A);
  }
  // lambda log det(F^T F / delta + I), from the global Gram matrix: the
  // same minimizer as log det(F^T F + delta I), but >= 0 and free of the
  // data's units, so that the stopping test does not depend on them.
  double value(const arma::Mat<eT>& own_gram) const {
    if (!active()) return 0.0;
    const arma::mat gram = arma::conv_to<arma::mat>::from(own_gram);
    double val = 0, sign = 0;
    arma::log_det(val, sign, gram / delta_ + arma::eye(gram.n_rows, gram.n_cols));
    return lambda_ * val;
  }
  double delta() const { return delta_; }
  void restore(double delta) { delta_ = delta; }
  // Fixes delta from the starting factor, before the first objective.
  void start(const arma::Mat<eT>& own_gram) {
    if (!active()) return;
    const arma::mat gram = arma::conv_to<arma::mat>::from(own_gram);
    delta_ = delta_rel_ * std::max(arma::trace(gram) / double(gram.n_rows), 1e-300);
  }

 private:
  double lambda_ = 0, delta_rel_ = 0.1, delta_ = 0;
};

}  // namespace unmix::regularize
