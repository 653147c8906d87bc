#pragma once
#include <armadillo>

#include "../core/products.hpp"

namespace unmix::regularize {

// lambda * ||F||_1. For F >= 0 the gradient is the constant lambda, so the
// half-step problem  min 1/2 tr(F G F^T) - <F, R>  just has R - lambda.
// (Not the "squared row l1" some libraries call l1, which adds to G.)
struct L1 {
  double lambda = 0.0;

  template <typename eT>
  void apply(arma::Mat<eT>& R) const {
    if (lambda > 0) R -= static_cast<eT>(lambda);
  }
  template <typename eT>
  double value(const arma::Mat<eT>& F) const {
    return lambda > 0 ? lambda * total(F) : 0.0;
  }
};

}  // namespace unmix::regularize
