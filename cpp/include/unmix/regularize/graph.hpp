#pragma once
#include <algorithm>
#include <armadillo>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "../comm/split.hpp"

namespace unmix::regularize {

// A certified upper bound on the largest eigenvalue of L = D - S, for the
// majorizer below. For any x, x^T L x = sum_{i<j} S_ij (x_i - x_j)^2 is at
// most |x|^T (D + S) |x|, so lambda_max(L) <= rho(D + S), and for the
// non-negative matrix Q = D + S every positive x bounds its spectral radius
// from above: rho(Q) <= max_i (Q x)_i / x_i (Collatz-Wielandt). Power steps
// x <- Q x tighten that bound towards rho(Q) and never below it, so each
// one is safe to use. Gershgorin's 2 d_max is the bound of x = 1 (where
// every row has its own degree); a k-nearest-neighbour graph, whose few
// hubs set d_max, gets about 1.6 times less (measured on the 5-NN graph of
// scikit-learn's digits: 20.8 against 34), a regular graph (a pixel grid)
// nothing. Vertices without edges have zero rows in L and are left out.
inline double laplacian_bound(const arma::sp_mat& S, const arma::vec& degree) {
  const double d_max = degree.is_empty() ? 0.0 : degree.max();
  if (!(d_max > 0)) return 0.0;
  const arma::uvec linked = arma::find(degree > 0);
  arma::vec x(degree.n_elem, arma::fill::zeros);
  x(linked).fill(1.0);
  double bound = 2.0 * d_max;
  // At most 30 steps (each O(nnz)), fewer once a step gains under 0.1 %
  // (at once on a regular graph): the bound depends on the graph alone.
  for (int step = 0; step < 30; ++step) {
    const arma::vec y = degree % x + S * x;
    const arma::vec ratio = y(linked) / x(linked);
    if (!ratio.is_finite()) break;  // an x_i underflowed: keep the last bound
    const double previous = bound;
    bound = std::min(bound, ratio.max());
    if (step > 0 && bound > (1.0 - 1e-3) * previous) break;
    x = y / arma::norm(y, "inf");
  }
  // Rounding in the sums above is far below this margin; and the majorizer
  // needs bound >= d_max (so that the right-hand side stays >= 0), which
  // rho(D + S) >= max_i Q_ii >= d_max guarantees.
  return std::max(bound * (1.0 + 1e-9), d_max);
}

// gamma / 2 tr(F^T L F) with L = D - S the Laplacian of a symmetric
// non-negative similarity S between rows of F (spatial smoothness when the
// rows are pixels; Cai et al. 2011). L is not diagonal, so the half-step
// works on a majorizer: since L <= beta I (beta = laplacian_bound, at most
// 2 d_max), around the current F~
//   tr(F^T L F) <= tr(F~^T L F~) + 2 <L F~, F - F~> + beta ||F - F~||^2,
// which adds gamma beta to the diagonal of G and
// gamma (S F~ + (beta - d) .* F~) to R — both non-negative, so every rule,
// MU included, minimizes a surrogate that touches the objective at F~ and the
// objective stays monotone.
//
// The scale of the factors. X ~ F O^T does not change when column j of F
// is multiplied by a and column j of the other factor O divided by it, but
// the graph term changes by a^2: unweighted, the term has no minimizer —
// it can be made as small as one likes by shrinking F and growing O, and an
// exact solver run long enough drifts there, until the graph has no effect
// left. GNMF (Cai et al.) states the convention that the columns of the
// basis O have unit norm but applies it only before and after its
// multiplicative steps, which keep F near the scale of its random start
// and shrink O instead: its lambda acts, at unit-norm O, as lambda /
// ||o_j||^2, measured 540 lambda on scikit-learn's digits (64 features)
// and 45000 lambda on a 1024-pixel image set (bench/gnmf.py). When nothing
// else fixes the scale (scaled(): no simplex rows, bounds or fixed columns
// on either factor), the term here is the unweighted one at columns of O
// of norm 1 / sqrt(p), p the number of rows of O — the norm of a flat
// column summing to one, so that F holds totals, like counts:
//   gamma / 2 sum_j p ||o_j||^2 f_j^T L f_j.
// It does not change under the rescaling, so the problem is well posed
// and every half-step still minimizes a majorizer: F's half-step sees the
// term above with weights c_j = p ||o_j||^2 (from the diagonal of the Gram
// matrix G = O^T O it is handed), and O's half-step sees a ridge
// gamma / 2 sum_j p q_j ||o_j||^2, q_j = f_j^T L f_j (column_quadratic(),
// summed over the ranks, passed to the other factor's Penalty). With both
// terms quadratic in the data, gamma does not depend on its units; growing
// with p, it puts GNMF's standard lambda = 100 where GNMF's own runs are,
// where the clustering hardly depends on lambda any more. At columns of O
// of norm 1 / sqrt(p) the term is exactly the unweighted one, and that is
// how the driver returns the factors when no other penalty depends on the
// scale.
//
// In the distributed driver each rank keeps its own rows of S and receives,
// every time F changes, the rows of F that its rows are linked to on other
// ranks (distribute()). For a grid graph of ny x nx pixels in row order that
// is about nx rows from each of the two neighbouring ranks: 2 nx k words per
// rank per half-step (4 nx k with 8 neighbours across a corner, still two
// image rows deep), against the (m/p) k words of the factor itself. The
// scaled term adds one all-reduce of the k numbers q_j per iteration.
template <typename eT>
class Graph {
 public:
  Graph() = default;
  Graph(const arma::sp_mat& S, double gamma) : gamma_(gamma) {
    if (gamma_ <= 0) return;
    S_ = arma::conv_to<arma::SpMat<eT>>::from(S);
    const arma::vec degree(arma::sum(S, 1));
    degree_ = arma::conv_to<arma::Col<eT>>::from(degree);
    // With room for the rounding of S and D in eT (float32 too), so that
    // beta I - L stays positive semidefinite as the half-steps compute it.
    const double beta = laplacian_bound(S, degree) * (1.0 + 16.0 * std::numeric_limits<eT>::epsilon());
    beta_ = static_cast<eT>(beta);
    if (double(beta_) < beta) beta_ = std::nextafter(beta_, std::numeric_limits<eT>::infinity());
  }
  bool active() const { return gamma_ > 0; }
  // The term weighted by the other factor's squared column norms (see
  // above): set by the driver when nothing else fixes the factors' scale;
  // other_rows: p, the other factor's number of rows (over all ranks).
  void set_scaled(bool scaled, double other_rows) {
    scaled_ = scaled && active();
    other_rows_ = other_rows;
  }
  bool scaled() const { return scaled_; }
  double other_rows() const { return other_rows_; }
  double gamma() const { return gamma_; }

  // Keeps the rows `own` of S (this rank's rows of F) and plans to fetch the
  // rows of F they link to from their owners: comm.row_exchange /
  // comm.exchange_rows of the distributed communicator. Collective.
  template <typename Comm>
  void distribute(const Comm& comm, bool W_side, comm::Range own) {
    if (!active()) return;
    const arma::uword last = own.first + own.count;
    arma::SpMat<eT> mine = own.count ? arma::SpMat<eT>(S_.rows(own.first, last - 1))
                                     : arma::SpMat<eT>(0, S_.n_cols);
    std::vector<arma::uword> wanted;
    for (auto e = mine.begin(); e != mine.end(); ++e)
      if (e.col() < own.first || e.col() >= last) wanted.push_back(e.col());
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    auto plan = comm.row_exchange(W_side, wanted);
    // This rank's rows of S, split by columns: those of its own rows of F,
    // and those of the halo in the plan's order.
    std::vector<arma::uword> halo_col(S_.n_cols, 0);
    for (std::size_t t = 0; t < plan.recv_rows.size(); ++t) halo_col[plan.recv_rows[t]] = t;
    std::vector<arma::uword> at[2];
    std::vector<eT> values[2];
    for (auto e = mine.begin(); e != mine.end(); ++e) {
      const bool halo = e.col() < own.first || e.col() >= last;
      at[halo].insert(at[halo].end(), {e.row(), halo ? halo_col[e.col()] : e.col() - own.first});
      values[halo].push_back(*e);
    }
    auto block = [&](int h, arma::uword n_cols) {
      return arma::SpMat<eT>(arma::umat(at[h].data(), 2, values[h].size()),
                             arma::Col<eT>(values[h]), own.count, n_cols);
    };
    S_ = block(0, own.count);
    S_halo_ = block(1, plan.recv_rows.size());
    degree_ = own.count ? arma::Col<eT>(degree_.subvec(own.first, last - 1)) : arma::Col<eT>();
    fetch_ = [&comm, plan = std::move(plan)](const arma::Mat<eT>& F, arma::Mat<eT>& halo) {
      comm.exchange_rows(plan, F, halo);
    };
  }

  // S F for the current F: needed by the next half-step and the objective.
  void track(const arma::Mat<eT>& F) {
    if (!active()) return;
    SF_ = S_ * F;
    if (!fetch_) return;
    fetch_(F, halo_);
    SF_ += S_halo_ * halo_;
  }
  // The weights c_j = p ||o_j||^2 of the scaled term, from the other
  // factor's Gram matrix (the G of this factor's half-step, before any
  // penalty changes it); all ones when the term is not scaled.
  void weigh(const arma::Mat<eT>& other_gram) {
    if (!scaled_) return;
    weights_ = other_rows_ * arma::conv_to<arma::vec>::from(arma::Col<eT>(other_gram.diag()));
  }
  void apply_gram(arma::Mat<eT>& G) const {
    if (!active()) return;
    const eT g = static_cast<eT>(gamma_) * beta_;
    if (scaled_)
      G.diag() += g * arma::conv_to<arma::Col<eT>>::from(weights_);
    else
      G.diag() += g;
  }
  // Rows [first, first + R.n_rows) of R, with F's same rows.
  void apply_rows(arma::Mat<eT>& R, const arma::Mat<eT>& F, arma::uword first) const {
    if (!active() || R.n_rows == 0) return;
    const eT g = static_cast<eT>(gamma_);
    const arma::uword last = first + R.n_rows - 1;
    if (!scaled_) {
      R += g * (SF_.rows(first, last) + F.each_col() % (beta_ - degree_.subvec(first, last)));
      return;
    }
    arma::Mat<eT> T = SF_.rows(first, last) + F.each_col() % (beta_ - degree_.subvec(first, last));
    T.each_row() %= g * arma::conv_to<arma::Row<eT>>::from(weights_.t());
    R += T;
  }
  // For the KL update, which takes the majorizer per entry: the curvature
  // gamma c_j beta / 2 and the linear coefficient
  // gamma c_j ((L F~)_ij - beta F~_ij).
  double curvature(arma::uword j) const {
    return active() ? 0.5 * gamma_ * weight(j) * double(beta_) : 0.0;
  }
  double linear(const arma::Mat<eT>& F, arma::uword i, arma::uword j) const {
    if (!active()) return 0.0;
    const double f = F(i, j);
    return gamma_ * weight(j) * (double(degree_[i]) * f - double(SF_(i, j)) - double(beta_) * f);
  }

  // q_j = f_j^T L f_j over this rank's rows of F (sum_i d_i F_ij^2 -
  // F_ij (S F)_ij), with S F from track(): the ridge the scaled term puts
  // on the other factor, once summed over the ranks.
  arma::Mat<double> column_quadratic(const arma::Mat<eT>& F) const {
    arma::Mat<double> q(F.n_cols, 1, arma::fill::zeros);
    if (!active()) return q;
    for (arma::uword j = 0; j < F.n_cols; ++j) {
      double quad = 0.0, cross = 0.0;
      for (arma::uword i = 0; i < F.n_rows; ++i) {
        const double f = F(i, j);
        quad += double(degree_[i]) * f * f;
        cross += f * double(SF_(i, j));
      }
      q[j] = quad - cross;
    }
    return q;
  }
  // gamma / 2 sum_j c_j q_j on this rank's rows, c_j = p other_gram(j, j)
  // when scaled (the other factor as it is now), else 1.
  double value(const arma::Mat<eT>& F, const arma::Mat<eT>& other_gram) const {
    if (!active()) return 0.0;
    const arma::Mat<double> q = column_quadratic(F);
    double sum = 0.0;
    for (arma::uword j = 0; j < q.n_elem; ++j)
      sum += (scaled_ ? other_rows_ * double(other_gram(j, j)) : 1.0) * q[j];
    return 0.5 * gamma_ * sum;
  }

 private:
  double weight(arma::uword j) const { return scaled_ ? weights_[j] : 1.0; }

  double gamma_ = 0;
  bool scaled_ = false;
  double other_rows_ = 1;  // p
  arma::vec weights_;  // c_j of the scaled term, set by weigh()
  arma::SpMat<eT> S_;
  arma::Col<eT> degree_;
  eT beta_ = 0;  // laplacian_bound(S)
  arma::SpMat<eT> S_halo_;  // distributed: S_ links own rows, S_halo_ the halo
  arma::Mat<eT> SF_, halo_;
  std::function<void(const arma::Mat<eT>&, arma::Mat<eT>&)> fetch_;
};

}  // namespace unmix::regularize
