#pragma once
#include <algorithm>
#include <armadillo>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

namespace unmix::rules {

// Non-negative least squares with many right-hand sides by block principal
// pivoting (Kim & Park, SIAM J. Sci. Comput. 33(6), 2011). For every column r
// of Rt it solves
//     min_{x >= 0}  1/2 x^T G x - r^T x      (G symmetric positive semidefinite)
// exactly: it exchanges whole blocks of variables between the passive set
// (x free) and the active set (x = 0) until the KKT conditions
//     x >= 0,  y = G x - r >= 0,  x .* y = 0
// hold. Columns whose passive sets are equal share one Cholesky factorization.
// The solve is warm-started from the passive set of the X passed in.
template <typename eT>
class BlockPivotingNNLS {
 public:
  // Rt, X: k x N. On return X holds the solutions. Returns the number of
  // exchange rounds (0 when the warm start was already optimal).
  int solve(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, arma::Mat<eT>& X) {
    const arma::uword k = G.n_rows, N = Rt.n_cols;
    if (X.n_rows != k || X.n_cols != N) X.zeros(k, N);
    passive_.resize(static_cast<std::size_t>(k) * N);
    for (arma::uword i = 0; i < X.n_elem; ++i) passive_[i] = X[i] > 0;
    Y_.set_size(k, N);
    alpha_.assign(N, 3);
    beta_.assign(N, static_cast<int>(k) + 1);
    g_max_ = static_cast<double>(arma::abs(G).max());

    std::vector<arma::uword> todo(N);
    std::iota(todo.begin(), todo.end(), arma::uword(0));
    solve_passive(G, Rt, X, todo);

    // Kim & Park's rule terminates in exact arithmetic; the cap only guards
    // against rounding making it cycle on a degenerate problem.
    const int max_rounds = 10 * static_cast<int>(k) + 100;
    int round = 0;
    std::vector<arma::uword> next;
    while (round < max_rounds) {
      next.clear();
      for (arma::uword c : todo)
        if (exchange(Rt, X, c)) next.push_back(c);
      if (next.empty()) break;
      todo.swap(next);
      solve_passive(G, Rt, X, todo);
      ++round;
    }
    X.for_each([](eT& v) { if (v < 0) v = eT(0); });  // rounding-level negatives
    return round;
  }

 private:
  // Finds the infeasible variables of column c and flips them in the passive
  // set following Kim & Park's full-exchange rule with Murty's single-variable
  // backup. Returns false when column c is already optimal.
  bool exchange(const arma::Mat<eT>& Rt, const arma::Mat<eT>& X, arma::uword c) {
    const arma::uword k = X.n_rows;
    const eT* x = X.colptr(c);
    const eT* y = Y_.colptr(c);
    std::uint8_t* p = &passive_[static_cast<std::size_t>(c) * k];
    double x_max = 0, r_max = 0;
    for (arma::uword i = 0; i < k; ++i) {
      x_max = std::max(x_max, std::abs(static_cast<double>(x[i])));
      r_max = std::max(r_max, std::abs(static_cast<double>(Rt(i, c))));
    }
    const double eps = 16.0 * static_cast<double>(k) * std::numeric_limits<eT>::epsilon();
    const double tol_x = eps * x_max, tol_y = eps * (r_max + g_max_ * x_max);
    auto infeasible = [&](arma::uword i) {
      return p[i] ? x[i] < -tol_x : y[i] < -tol_y;
    };
    int n_infeasible = 0;
    arma::uword last = 0;
    for (arma::uword i = 0; i < k; ++i)
      if (infeasible(i)) { ++n_infeasible; last = i; }
    if (n_infeasible == 0) return false;

    if (n_infeasible < beta_[c]) {
      beta_[c] = n_infeasible;
      alpha_[c] = 3;
    } else if (alpha_[c] > 0) {
      --alpha_[c];
    } else {
      p[last] ^= 1;  // backup rule: flip only the last infeasible variable
      return true;
    }
    for (arma::uword i = 0; i < k; ++i)
      if (infeasible(i)) p[i] ^= 1;
    return true;
  }

  // Solves the unconstrained problem on the passive set of every listed
  // column, one factorization per distinct passive set, and updates Y.
  void solve_passive(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, arma::Mat<eT>& X,
                     std::vector<arma::uword>& cols) {
    const arma::uword k = G.n_rows;
    auto key = [&](arma::uword c) { return &passive_[static_cast<std::size_t>(c) * k]; };
    std::sort(cols.begin(), cols.end(), [&](arma::uword a, arma::uword b) {
      const int cmp = std::memcmp(key(a), key(b), k);
      return cmp < 0 || (cmp == 0 && a < b);
    });
    for (std::size_t begin = 0; begin < cols.size();) {
      std::size_t end = begin + 1;
      while (end < cols.size() && std::memcmp(key(cols[begin]), key(cols[end]), k) == 0) ++end;
      const arma::uvec group(std::vector<arma::uword>(cols.begin() + begin, cols.begin() + end));
      solve_group(G, Rt, X, group, key(cols[begin]));
      begin = end;
    }
  }

  void solve_group(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, arma::Mat<eT>& X,
                   const arma::uvec& group, const std::uint8_t* passive) {
    const arma::uword k = G.n_rows;
    std::vector<arma::uword> idx_v;
    for (arma::uword i = 0; i < k; ++i)
      if (passive[i]) idx_v.push_back(i);
    X.cols(group).zeros();
    if (idx_v.empty()) {
      Y_.cols(group) = -Rt.cols(group);
      return;
    }
    const arma::uvec idx(idx_v);
    const arma::Mat<eT> Gp = G.submat(idx, idx);
    const arma::Mat<eT> rhs = Rt.submat(idx, group);
    arma::Mat<eT> sol;
    arma::Mat<eT> U;
    if (arma::chol(U, Gp)) {
      sol = arma::solve(arma::trimatu(U), arma::solve(arma::trimatl(U.t()), rhs));
    } else if (!arma::solve(sol, Gp, rhs, arma::solve_opts::force_approx)) {
      sol.zeros(idx.n_elem, group.n_elem);  // G is zero on this block: x = 0 minimizes
    }
    X.submat(idx, group) = sol;
    Y_.cols(group) = G.cols(idx) * sol - Rt.cols(group);
    Y_.submat(idx, group).zeros();
  }

  std::vector<std::uint8_t> passive_;
  std::vector<int> alpha_, beta_;
  arma::Mat<eT> Y_;
  double g_max_ = 0;
};

}  // namespace unmix::rules
