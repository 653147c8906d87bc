#pragma once
#include <algorithm>
#include <armadillo>
#include <vector>

#include "../kernels/dense_products.hpp"
#include "../parallel/pool.hpp"
#include "../regularize/penalty.hpp"
#include "../rules/mu_kl.hpp"
#include "feasible.hpp"
#include "options.hpp"
#include "products.hpp"

namespace unmix {

// Rows of a factor per block of a half-step: about 8192 values, so that a
// block's rows of F and R stay in L1/L2 through the rule. Fixed by the shape
// alone, like everything that decides an order of summation.
inline arma::uword block_rows(arma::uword k) {
  return std::max<arma::uword>(64, arma::uword(8192) / std::max<arma::uword>(k, 1));
}

// Everything one factor's half-step needs besides the data product: its
// regularizers, its feasible set, its fixed columns and the update rule with
// its buffers. The rule solves the problem on the free columns; fixed
// columns (known endmembers) move to the right-hand side,
//   R_free <- R_free - F_fixed G(fixed, free),
// which is exact for every rule.
//
// Every rule's problem separates by rows of F, so a half-step runs on
// blocks of rows, on the core's threads (each with its own copy of the
// rule and its buffers): begin() once with G, update_rows() for each
// block, end() once with the new F. A row's result does not depend on the
// block it is in, so the factors do not depend on the number of threads.
template <typename eT, template <typename> class Rule>
class FactorStep {
 public:
  FactorStep(const FactorOptions& o, arma::uword k, int threads)
      : options_(o), penalty_(o), feasible_(Feasible<eT>::from(o, k)), threads_(std::max(1, threads)),
        slots_(threads_) {
    arma::uvec is_fixed(k, arma::fill::zeros);
    for (arma::uword c : o.fixed_cols) is_fixed(c) = 1;
    free_ = arma::find(is_fixed == 0);
    fixed_ = arma::find(is_fixed == 1);
    free_feasible_ = feasible_.columns(free_);
    unit_feasible_ = feasible_;
    unit_feasible_.sums.reset();
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
      arma::Mat<eT> Ff = F.cols(free_);
      free_feasible_.project(Ff);
      F.cols(free_) = Ff;
    } else {
      feasible_.project(F);
    }
    penalty_.track(F);
  }

  // Rows [first, first + F.n_rows) of the factor moved into the feasible
  // set, fixed columns at their values (an extrapolated block).
  void project_rows(arma::uword first, arma::Mat<eT>& F) const {
    if (fixed_.is_empty()) {
      feasible_.project(F, first);
      return;
    }
    F.cols(fixed_) = arma::conv_to<arma::Mat<eT>>::from(options_.fixed_values.rows(first, first + F.n_rows - 1));
    arma::Mat<eT> Ff = F.cols(free_);
    free_feasible_.project(Ff);
    F.cols(free_) = Ff;
  }

  // A half-step in one call: R the data product (left untouched: the
  // objective needs it as it is), own_gram this factor's current Gram
  // matrix. Returns this rank's F^T F and <F, R> at the new F, summed a
  // block at a time in the order of the blocks.
  void update(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& F,
              const arma::Mat<eT>& own_gram, arma::Mat<eT>& gram, double& cross) {
    begin(G, own_gram);
    const arma::uword k = F.n_cols, rows = block_rows(k);
    const std::size_t blocks = (F.n_rows + rows - 1) / rows;
    std::vector<eT> grams(blocks * k * k);
    std::vector<double> crosses(blocks);
    parallel::for_each_task(blocks, threads_, [&](std::size_t b, int slot) {
      const arma::uword first = b * rows, last = std::min<arma::uword>(F.n_rows, first + rows) - 1;
      Slot& s = slots_[slot];
      s.R = R.rows(first, last);
      s.F = F.rows(first, last);
      update_rows(first, s.R, s.F, slot);
      F.rows(first, last) = s.F;
      crosses[b] = block_sums(s.F, s.R, &grams[b * k * k], 1);
    });
    end(F);
    sum_blocks(grams, crosses, k, gram, cross);
  }

  // The half-step's G: the other factor's Gram matrix with the penalties,
  // split by fixed and free columns.
  void begin(const arma::Mat<eT>& G, const arma::Mat<eT>& own_gram) {
    G_ = G;
    penalty_.apply_gram(G_, own_gram);
    if (!fixed_.is_empty()) {
      Gf_ = G_.submat(free_, free_);
      Gx_ = G_.submat(fixed_, free_);
    }
  }

  // Rows [first, first + F.n_rows) of the factor: R their rows of the data
  // product (left as they are), F their current values, updated in place.
  // slot: the calling thread's (parallel::for_each_task), for its buffers.
  void update_rows(arma::uword first, const arma::Mat<eT>& R, arma::Mat<eT>& F, int slot) {
    Slot& s = slots_[slot];
    const arma::Mat<eT>* Rp = &R;
    if (penalty_.changes_rows()) {
      s.Rw = R;
      penalty_.apply_rows(s.Rw, F, first);
      Rp = &s.Rw;
    }
    if (fixed_.is_empty() && feasible_.simplex && !feasible_.sums.is_empty()) {
      update_scaled(first, *Rp, F, slot);
      return;
    }
    if (fixed_.is_empty()) {
      s.rule.update(G_, *Rp, F, feasible_);
      return;
    }
    s.Rf = Rp->cols(free_) - F.cols(fixed_) * Gx_;
    s.Ff = F.cols(free_);
    s.rule.update(Gf_, s.Rf, s.Ff, free_feasible_);
    F.cols(free_) = s.Ff;
  }

  // Rows on a scaled simplex, row i summing to c_i: with f = c_i a, row i's
  // problem 1/2 f G f^T - r f^T is c_i^2 times that of a on the unit simplex
  // with r / c_i (every penalty is in G and R by now), so the rule solves
  // for a and f = c_i a, exactly for every rule. A row with c_i = 0 is zero.
  void update_scaled(arma::uword first, const arma::Mat<eT>& R, arma::Mat<eT>& F, int slot) {
    Slot& s = slots_[slot];
    s.Rs = R;
    for (arma::uword i = 0; i < F.n_rows; ++i) {
      const eT c = eT(feasible_.sum(first + i));
      if (c > 0) {
        s.Rs.row(i) /= c;
        F.row(i) /= c;
      } else {
        s.Rs.row(i).zeros();
        F.row(i).fill(eT(1) / eT(F.n_cols));
      }
    }
    s.rule.update(G_, s.Rs, F, unit_feasible_);
    for (arma::uword i = 0; i < F.n_rows; ++i) F.row(i) *= eT(feasible_.sum(first + i));
  }

  // After every block: F is the new factor.
  void end(const arma::Mat<eT>& F) { penalty_.track(F); }

  // A block's F^T F into gram (k x k) and its <F, R>.
  static double block_sums(const arma::Mat<eT>& F, const arma::Mat<eT>& R, eT* gram, int threads) {
    kernels::trans_times(F.memptr(), F.n_rows, F.n_cols, F.n_rows, F.memptr(), F.n_rows, F.n_cols, gram,
                         F.n_cols, threads);
    return inner(F, R);
  }
  // The blocks' sums, added in order.
  static void sum_blocks(const std::vector<eT>& grams, const std::vector<double>& crosses, arma::uword k,
                         arma::Mat<eT>& gram, double& cross) {
    gram.zeros(k, k);
    cross = 0.0;
    for (std::size_t b = 0; b < crosses.size(); ++b) {
      gram += arma::Mat<eT>(const_cast<eT*>(&grams[b * k * k]), k, k, false, true);
      cross += crosses[b];
    }
    symmetric_from_lower(gram);
  }

  // One Kullback-Leibler half-step: R = (M ./ W H^T) times the other factor,
  // colsum the other factor's column sums. Its surrogate is separable, so
  // fixed columns are simply not updated.
  // other_gram: the other factor's Gram matrix (the scaled graph term's weights).
  void update_kl(const arma::Row<eT>& colsum, const arma::Mat<eT>& R, arma::Mat<eT>& F,
                 const arma::Mat<eT>& other_gram) {
    penalty_.graph.weigh(other_gram);
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

  double local_penalty(const arma::Mat<eT>& F, const arma::Mat<eT>& other_gram) const {
    return penalty_.local_value(F, other_gram);
  }
  // The graph term weighted by the other factor's column norms, when nothing
  // else fixes the scale (regularize/graph.hpp): its gamma p q_j over this
  // rank's rows of F, to be summed over the ranks and given to the other
  // factor's half-step as set_ridge().
  // other_rows: the other factor's number of rows over all ranks.
  void set_graph_scaled(bool scaled, double other_rows) { penalty_.graph.set_scaled(scaled, other_rows); }
  bool graph_scaled() const { return penalty_.graph.scaled(); }
  arma::Mat<double> graph_ridge(const arma::Mat<eT>& F) const {
    return penalty_.graph.gamma() * penalty_.graph.other_rows() * penalty_.graph.column_quadratic(F);
  }
  void set_ridge(const arma::Mat<double>& ridge) { penalty_.ridge = arma::vec(ridge.memptr(), ridge.n_elem); }
  double gram_penalty(const arma::Mat<eT>& gram) const { return penalty_.gram_value(gram); }
  int threads() const { return threads_; }

 private:
  // A thread's rule and buffers.
  struct Slot {
    Rule<eT> rule;
    arma::Mat<eT> F, R, Rw, Rs, Rf, Ff;
  };

  const FactorOptions& options_;
  regularize::Penalty<eT> penalty_;
  Feasible<eT> feasible_, free_feasible_, unit_feasible_;
  arma::uvec free_, fixed_;
  int threads_;
  std::vector<Slot> slots_;
  rules::MUKL<eT> kl_rule_;
  arma::Mat<eT> G_, Gf_, Gx_;
};

}  // namespace unmix
