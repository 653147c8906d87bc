#pragma once
#include <armadillo>

#include "../parallel/pool.hpp"
#include "split.hpp"

namespace unmix::comm {

// The single-process communicator: a 1 x 1 grid whose collectives are no-ops.
// The distributed communicator offers the same calls (DESIGN.md §2):
//   all_reduce(x)                sum over every rank, in place
//   gather_H(H, buf) / gather_W  all-gather the factor rows of the grid
//                                column (row) that the local block needs
//   scatter_W(R, buf) / scatter_H  reduce-scatter the local product within
//                                the grid row (column) to the owned rows
// Serial versions return their argument, so nothing is copied.
struct Serial {
  static constexpr bool distributed = false;

  template <typename eT>
  void all_reduce(arma::Mat<eT>&) const {}
  double all_reduce(double x) const { return x; }
  double min(double x) const { return x; }
  // True on every rank if it is true on any: decisions taken from local
  // clocks or callbacks must agree, or ranks would leave the loop apart.
  bool any(bool x) const { return x; }

  template <typename eT>
  const arma::Mat<eT>& gather_H(const arma::Mat<eT>& H, arma::Mat<eT>&) const { return H; }
  template <typename eT>
  const arma::Mat<eT>& gather_W(const arma::Mat<eT>& W, arma::Mat<eT>&) const { return W; }
  template <typename eT>
  arma::Mat<eT>& scatter_W(arma::Mat<eT>& R, arma::Mat<eT>&) const { return R; }
  template <typename eT>
  arma::Mat<eT>& scatter_H(arma::Mat<eT>& R, arma::Mat<eT>&) const { return R; }

  int size() const { return 1; }  // ranks
  int grid_rows() const { return 1; }
  // Threads of the core's kernels when Options::threads is 0.
  int default_threads() const { return parallel::available_cores(); }

  // The rows of W (of m) and of H (of n) this rank owns.
  Range W_rows(arma::uword m) const { return {0, m}; }
  Range H_rows(arma::uword n) const { return {0, n}; }
};

}  // namespace unmix::comm
