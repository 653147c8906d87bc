#pragma once
#include <armadillo>

namespace unmix::regularize {

// lambda / 2 * ||F||_F^2: adds lambda to the diagonal of the Gram matrix.
struct L2 {
  double lambda = 0.0;

  template <typename eT>
  void apply(arma::Mat<eT>& G) const {
    if (lambda > 0) G.diag() += static_cast<eT>(lambda);
  }
  // ||F||_F^2 is the trace of the factor's own Gram matrix, already in hand.
  template <typename eT>
  double value(const arma::Mat<eT>& gram) const {
    return lambda > 0 ? 0.5 * lambda * arma::trace(arma::conv_to<arma::mat>::from(gram)) : 0.0;
  }
};

}  // namespace unmix::regularize
