#pragma once
#include <armadillo>
#include <memory>

namespace unmix::regularize {

// gamma / 2 tr(F^T L F) with L = D - S the Laplacian of a symmetric
// non-negative similarity S between rows of F (spatial smoothness when the
// rows are pixels; Cai et al. 2011). L is not diagonal, so the half-step
// works on a majorizer: since L <= 2 D <= 2 d_max I (D + S is positive
// semidefinite), around the current F~
//   tr(F^T L F) <= tr(F~^T L F~) + 2 <L F~, F - F~> + 2 d_max ||F - F~||^2,
// which adds 2 gamma d_max to the diagonal of G and
// gamma (S F~ + (2 d_max - d) .* F~) to R — both non-negative, so every rule,
// MU included, minimizes a surrogate that touches the objective at F~ and the
// objective stays monotone.
template <typename eT>
class Graph {
 public:
  Graph() = default;
  Graph(const arma::sp_mat& S, double gamma) : gamma_(gamma) {
    if (gamma_ <= 0) return;
    S_ = arma::conv_to<arma::SpMat<eT>>::from(S);
    degree_ = arma::conv_to<arma::Col<eT>>::from(arma::vec(arma::sum(S, 1)));
    d_max_ = degree_.is_empty() ? eT(0) : degree_.max();
  }
  bool active() const { return gamma_ > 0; }

  // S F for the current F: needed by the next half-step and the objective.
  void track(const arma::Mat<eT>& F) {
    if (active()) SF_ = S_ * F;
  }
  void apply(arma::Mat<eT>& G, arma::Mat<eT>& R, const arma::Mat<eT>& F) const {
    if (!active()) return;
    const eT g = static_cast<eT>(gamma_);
    G.diag() += 2 * g * d_max_;
    R += g * (SF_ + F.each_col() % (2 * d_max_ - degree_));
  }
  // For the KL update, which takes the majorizer per entry: the curvature
  // gamma d_max and the linear coefficient gamma ((L F~)_ij - 2 d_max F~_ij).
  double curvature() const { return active() ? gamma_ * double(d_max_) : 0.0; }
  double linear(const arma::Mat<eT>& F, arma::uword i, arma::uword j) const {
    if (!active()) return 0.0;
    const double f = F(i, j);
    return gamma_ * (double(degree_[i]) * f - double(SF_(i, j)) - 2.0 * double(d_max_) * f);
  }

  // gamma / 2 (sum_i d_i ||F_i||^2 - <F, S F>), with S F from track().
  double value(const arma::Mat<eT>& F) const {
    if (!active()) return 0.0;
    double quad = 0.0, cross = 0.0;
    for (arma::uword j = 0; j < F.n_cols; ++j)
      for (arma::uword i = 0; i < F.n_rows; ++i) {
        const double f = F(i, j);
        quad += double(degree_[i]) * f * f;
        cross += f * double(SF_(i, j));
      }
    return 0.5 * gamma_ * (quad - cross);
  }

 private:
  double gamma_ = 0;
  arma::SpMat<eT> S_;
  arma::Col<eT> degree_;
  eT d_max_ = 0;
  arma::Mat<eT> SF_;
};

}  // namespace unmix::regularize
