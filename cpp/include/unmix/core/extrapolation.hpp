#pragma once
#include <algorithm>
#include <armadillo>
#include <utility>

namespace unmix {

// Extrapolation with restarts (Ang & Gillis 2019, "HER"): each half-step
// starts from the other factor moved on along its last step,
//   F^ = F_n + beta (F_n - F_{n-1}),  projected back onto the feasible set,
// and the objective is measured at the pair the next half-step will see
// (H^_n, W_n when H is updated first), from the products it needs anyway.
// While the objective falls, beta grows (by gamma, up to beta_bar, which
// itself grows by gamma_bar); when it rises, the next iteration restarts
// from the plain iterates and beta shrinks by eta, its last value becoming
// the new ceiling. The objective is then not monotone: it may rise at a
// restart, which is why the mode is asked for (Options::extrapolate).
//
// The driver keeps the factors the next half-step starts from in W and H;
// this class keeps the plain iterates F_n and, between a half-step and the
// extrapolation of its result, F_{n-1}.
template <typename eT>
class Extrapolation {
 public:
  static constexpr double beta0 = 0.5, eta = 1.5, gamma = 1.01, gamma_bar = 1.005;

  // The plain iterates start at the starting factors.
  void start(const arma::Mat<eT>& W, const arma::Mat<eT>& H) {
    plain_[0] = W;
    plain_[1] = H;
  }
  // A resumed run picks up where the checkpoint left it.
  void resume(const arma::Mat<eT>& W_plain, const arma::Mat<eT>& H_plain, double beta, double beta_bar) {
    start(W_plain, H_plain);
    beta_ = beta;
    beta_bar_ = beta_bar;
  }

  // Factor s was just updated to F, its new plain iterate.
  void stepped(int s, const arma::Mat<eT>& F) {
    previous_[s] = std::move(plain_[s]);
    plain_[s] = F;
  }
  // F^ before projection (the caller projects it).
  void extrapolate(int s, arma::Mat<eT>& F) const {
    F = plain_[s] + eT(beta_) * (plain_[s] - previous_[s]);
  }

  // After the objective f of the iteration: whether to go on extrapolating
  // (true) or to restart from the plain iterates (false).
  bool accept(double f, double f_prev) {
    if (f > f_prev) {
      beta_bar_ = beta_;
      beta_ /= eta;
      return false;
    }
    beta_bar_ = std::min(1.0, gamma_bar * beta_bar_);
    beta_ = std::min(beta_bar_, gamma * beta_);
    return true;
  }

  const arma::Mat<eT>& plain(int s) const { return plain_[s]; }
  // For a pass that updates the plain iterate row by row (core/fused_step.hpp).
  arma::Mat<eT>& plain(int s) { return plain_[s]; }
  double beta() const { return beta_; }
  double beta_bar() const { return beta_bar_; }

 private:
  double beta_ = beta0, beta_bar_ = 1.0;
  arma::Mat<eT> plain_[2], previous_[2];
};

}  // namespace unmix
