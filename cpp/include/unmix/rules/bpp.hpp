#pragma once
#include <armadillo>

#include "../core/feasible.hpp"
#include "nnls_bpp.hpp"

namespace unmix::rules {

// ANLS with block principal pivoting: every row of F is the exact NNLS
// solution given the other factor, warm-started from the current F.
template <typename eT>
class BPP {
 public:
  static constexpr const char* name = "bpp";
  static constexpr bool supports_bounds = false;
  static constexpr bool supports_simplex = true;

  void update(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& F,
              const Feasible<eT>& feasible) {
    nnls_.solve(G, R, F, feasible.simplex);
  }

 private:
  BlockPivotingNNLS<eT> nnls_;
};

}  // namespace unmix::rules
