#pragma once
// All the regularizers of one factor, applied to the half-step's (G, R)
// before the update rule sees them (DESIGN.md §1).
#include "../core/options.hpp"
#include "graph.hpp"
#include "l1.hpp"
#include "l2.hpp"
#include "minvol.hpp"

namespace unmix::regularize {

template <typename eT>
struct Penalty {
  L1 l1;
  L2 l2;
  Graph<eT> graph;
  MinVol<eT> minvol;

  explicit Penalty(const FactorOptions& o)
      : l1{o.l1}, l2{o.l2}, graph(o.graph ? Graph<eT>(*o.graph, o.smooth) : Graph<eT>()),
        minvol(o.minvol, o.minvol_delta) {}

  // The half-step's G (the other factor's Gram matrix on entry); own_gram:
  // the global F^T F of this factor, for the min-volume term.
  void apply_gram(arma::Mat<eT>& G, const arma::Mat<eT>& own_gram) {
    graph.weigh(G);  // before anything is added to G
    minvol.apply(G, own_gram);
    graph.apply_gram(G);
    l2.apply(G);
    if (!ridge.is_empty()) G.diag() += arma::conv_to<arma::Col<eT>>::from(ridge);
  }
  // The other factor's scaled graph term as seen from this factor:
  // gamma / 2 sum_j q_j ||F_j||^2 (regularize/graph.hpp), a ridge per
  // column, gamma q_j, set before each half-step. Its value is counted
  // with the other factor's graph term.
  arma::vec ridge;
  // Whether apply_rows changes R.
  bool changes_rows() const { return l1.lambda > 0 || graph.active(); }
  // Rows [first, first + R.n_rows) of the half-step's R, with F's same rows
  // (before the update).
  void apply_rows(arma::Mat<eT>& R, const arma::Mat<eT>& F, arma::uword first) const {
    graph.apply_rows(R, F, first);
    l1.apply(R);
  }
  // Called once F has its new value.
  void track(const arma::Mat<eT>& F) { graph.track(F); }
  // The penalty's value on this rank's rows of F (the caller sums over
  // ranks); other_gram: the other factor's current global Gram matrix.
  double local_value(const arma::Mat<eT>& F, const arma::Mat<eT>& other_gram) const {
    return l1.value(F) + graph.value(F, other_gram);
  }
  // The part that depends only on the global Gram matrix.
  double gram_value(const arma::Mat<eT>& gram) const { return l2.value(gram) + minvol.value(gram); }
  void start(const arma::Mat<eT>& own_gram) { minvol.start(own_gram); }
  // What start() fixed, for a checkpoint, and putting it back on resume.
  double fixed_at_start() const { return minvol.delta(); }
  void restore(double value) { minvol.restore(value); }
};

}  // namespace unmix::regularize
