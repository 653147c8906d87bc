#pragma once
#include <algorithm>
#include <armadillo>
#include <functional>
#include <vector>

#include "../comm/split.hpp"

namespace unmix::regularize {

// gamma / 2 tr(F^T L F) with L = D - S the Laplacian of a symmetric
// non-negative similarity S between rows of F (spatial smoothness when the
// rows are pixels; Cai et al. 2011). L is not diagonal, so the half-step
// works on a majorizer: since L <= 2 D <= 2 d_max I (D + S is positive
// semidefinite), around the current F~
//   tr(F^T L F) <= tr(F~^T L F~) + 2 <L F~, F - F~> + 2 d_max ||F - F~||^2,
// which adds 2 gamma d_max to the diagonal of G and
// gamma (S F~ + (2 d_max - d) .* F~) to R — both non-negative, so every rule,
// MU included, minimizes a surrogate that touches the objective at F~ and the
// objective stays monotone.
//
// In the distributed driver each rank keeps its own rows of S and receives,
// every time F changes, the rows of F that its rows are linked to on other
// ranks (distribute()). For a grid graph of ny x nx pixels in row order that
// is about nx rows from each of the two neighbouring ranks: 2 nx k words per
// rank per half-step (4 nx k with 8 neighbours across a corner, still two
// image rows deep), against the (m/p) k words of the factor itself.
template <typename eT>
class Graph {
 public:
  Graph() = default;
  Graph(const arma::sp_mat& S, double gamma) : gamma_(gamma) {
    if (gamma_ <= 0) return;
    S_ = arma::conv_to<arma::SpMat<eT>>::from(S);
    degree_ = arma::conv_to<arma::Col<eT>>::from(arma::vec(arma::sum(S, 1)));
    d_max_ = degree_.is_empty() ? eT(0) : degree_.max();
  }
  bool active() const { return gamma_ > 0; }

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
  void apply_gram(arma::Mat<eT>& G) const {
    if (!active()) return;
    G.diag() += 2 * static_cast<eT>(gamma_) * d_max_;
  }
  // Rows [first, first + R.n_rows) of R, with F's same rows.
  void apply_rows(arma::Mat<eT>& R, const arma::Mat<eT>& F, arma::uword first) const {
    if (!active() || R.n_rows == 0) return;
    const eT g = static_cast<eT>(gamma_);
    const arma::uword last = first + R.n_rows - 1;
    R += g * (SF_.rows(first, last) + F.each_col() % (2 * d_max_ - degree_.subvec(first, last)));
  }
  // For the KL update, which takes the majorizer per entry: the curvature
  // gamma d_max and the linear coefficient gamma ((L F~)_ij - 2 d_max F~_ij).
  double curvature() const { return active() ? gamma_ * double(d_max_) : 0.0; }
  double linear(const arma::Mat<eT>& F, arma::uword i, arma::uword j) const {
    if (!active()) return 0.0;
    const double f = F(i, j);
    return gamma_ * (double(degree_[i]) * f - double(SF_(i, j)) - 2.0 * double(d_max_) * f);
  }

  // gamma / 2 (sum_i d_i ||F_i||^2 - <F, S F>), with S F from track().
  double value(const arma::Mat<eT>& F) const {
    if (!active()) return 0.0;
    double quad = 0.0, cross = 0.0;
    for (arma::uword j = 0; j < F.n_cols; ++j)
      for (arma::uword i = 0; i < F.n_rows; ++i) {
        const double f = F(i, j);
        quad += double(degree_[i]) * f * f;
        cross += f * double(SF_(i, j));
      }
    return 0.5 * gamma_ * (quad - cross);
  }

 private:
  double gamma_ = 0;
  arma::SpMat<eT> S_;
  arma::Col<eT> degree_;
  eT d_max_ = 0;
  arma::SpMat<eT> S_halo_;  // distributed: S_ links own rows, S_halo_ the halo
  arma::Mat<eT> SF_, halo_;
  std::function<void(const arma::Mat<eT>&, arma::Mat<eT>&)> fetch_;
};

}  // namespace unmix::regularize
