#pragma once
// All the regularizers of one factor, applied to the half-step's (G, R)
// before the update rule sees them (DESIGN.md §1).
#include "../core/options.hpp"
#include "l1.hpp"
#include "l2.hpp"

namespace unmix::regularize {

struct Penalty {
  L1 l1;
  L2 l2;

  explicit Penalty(const FactorOptions& o) : l1{o.l1}, l2{o.l2} {}

  template <typename eT>
  void apply(arma::Mat<eT>& G, arma::Mat<eT>& R) const {
    l1.apply(G, R);
    l2.apply(G, R);
  }
  // <F, R> as it was before apply() changed R.
  template <typename eT>
  double raw_inner(const arma::Mat<eT>& F, const arma::Mat<eT>& R) const {
    return l1.raw_inner(F, R);
  }
  // The penalty's value on this rank's rows of F (the caller sums over ranks).
  template <typename eT>
  double local_value(const arma::Mat<eT>& F) const {
    return l1.value(F);
  }
  // The part that depends only on the global Gram matrix.
  template <typename eT>
  double gram_value(const arma::Mat<eT>& gram) const {
    return l2.value(gram);
  }
};

}  // namespace unmix::regularize
