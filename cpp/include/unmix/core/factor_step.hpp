#pragma once
#include <armadillo>

#include "../regularize/penalty.hpp"
#include "../rules/mu_kl.hpp"
#include "feasible.hpp"
#include "options.hpp"

namespace unmix {

// Everything one factor's half-step needs besides the data product: its
// regularizers, its feasible set, its fixed columns and the update rule with
// its buffers. The rule solves the problem on the free columns; fixed
// columns (known endmembers) move to the right-hand side,
//   R_free <- R_free - F_fixed G(fixed, free),
// which is exact for every rule.
template <typename eT, template <typename> class Rule>
class FactorStep {
 public:
  FactorStep(const FactorOptions& o, arma::uword k)
      : options_(o), penalty_(o), feasible_(Feasible<eT>::from(o, k)) {
    arma::uvec is_fixed(k, arma::fill::zeros);
    for (arma::uword c : o.fixed_cols) is_fixed(c) = 1;
    free_ = arma::find(is_fixed == 0);
    fixed_ = arma::find(is_fixed == 1);
    free_feasible_ = feasible_.columns(free_);
  }

  // On a distributed grid: this rank owns the rows `own` of the factor (of
  // W when W_side), and the graph term fetches the neighbours it needs.
  template <typename Comm>
  void distribute(const Comm& comm, bool W_side, comm::Range own) {
    penalty_.graph.distribute(comm, W_side, own);
  }

  // Puts a starting factor in shape: fixed columns get their values, the
  // rest moves into the feasible set (unless it is known to be there).
  void prepare(arma::Mat<eT>& F, bool project = true) {
    if (!project) {
    } else if (!fixed_.is_empty()) {
      F.cols(fixed_) = arma::conv_to<arma::Mat<eT>>::from(options_.fixed_values);
      Ff_ = F.cols(free_);
      free_feasible_.project(Ff_);
      F.cols(free_) = Ff_;
    } else {
      feasible_.project(F);
    }
    penalty_.track(F);
  }

  // One half-step: G is the other factor's Gram matrix, R the data product
  // (left untouched: the objective needs it as it is), own_gram this
  // factor's current Gram matrix.
  void update(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& F,
              const arma::Mat<eT>& own_gram) {
    G_ = G;
    Rw_ = R;
    penalty_.apply(G_, Rw_, F, own_gram);
    if (fixed_.is_empty()) {
      rule_.update(G_, Rw_, F, feasible_);
    } else {
      Gf_ = G_.submat(free_, free_);
      Rf_ = Rw_.cols(free_) - F.cols(fixed_) * G_.submat(fixed_, free_);
      Ff_ = F.cols(free_);
      rule_.update(Gf_, Rf_, Ff_, free_feasible_);
      F.cols(free_) = Ff_;
    }
    penalty_.track(F);
  }

  // One Kullback-Leibler half-step: R = (M ./ W H^T) times the other factor,
  // colsum the other factor's column sums. Its surrogate is separable, so
  // fixed columns are simply not updated.
  void update_kl(const arma::Row<eT>& colsum, const arma::Mat<eT>& R, arma::Mat<eT>& F) {
    kl_rule_.update(colsum, R, F, penalty_, feasible_, free_);
    penalty_.track(F);
  }

  // Fixes what the penalties take from the starting point (min-volume's delta).
  void start(const arma::Mat<eT>& own_gram) { penalty_.start(own_gram); }
  double fixed_at_start() const { return penalty_.fixed_at_start(); }
  void restore(double value) { penalty_.restore(value); }

  // Whether column j may be given a fresh start when it dies: not a known
  // endmember, and not part of sum-to-one rows (an unused component is a
  // valid answer there).
  bool revivable(arma::uword j) const {
    return !feasible_.simplex && !options_.fixed && !arma::any(fixed_ == j);
  }
  void revive(arma::Mat<eT>& F, arma::uword j, const arma::Mat<eT>& fresh) {
    F.col(j) = arma::clamp(fresh.col(0), feasible_.lo(j), feasible_.hi(j));
    penalty_.track(F);
  }

  double local_penalty(const arma::Mat<eT>& F) const { return penalty_.local_value(F); }
  double gram_penalty(const arma::Mat<eT>& gram) const { return penalty_.gram_value(gram); }

 private:
  const FactorOptions& options_;
  regularize::Penalty<eT> penalty_;
  Feasible<eT> feasible_, free_feasible_;
  arma::uvec free_, fixed_;
  Rule<eT> rule_;
  rules::MUKL<eT> kl_rule_;
  arma::Mat<eT> G_, Rw_, Gf_, Rf_, Ff_;
};

}  // namespace unmix
