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
    // The solver works on columns; rows of F become contiguous columns.
    Rt_ = R.t();
    Ft_ = F.t();
    nnls_.solve(G, Rt_, Ft_, feasible.simplex);
    F = Ft_.t();
  }

 private:
  BlockPivotingNNLS<eT> nnls_;
  arma::Mat<eT> Rt_, Ft_;
};

}  // namespace unmix::rules
