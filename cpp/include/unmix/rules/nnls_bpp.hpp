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
      solve_group(G, Rt, X, &cols[begin], end - begin, key(cols[begin]));
      begin = end;
    }
  }

  // One Cholesky factorization of G on the passive set, then two triangular
  // solves per column. Plain loops on reused buffers: the sets are small
  // (k is tens) and numerous, so allocation and indexing overhead would
  // otherwise dominate.
  void solve_group(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, arma::Mat<eT>& X,
                   const arma::uword* group, std::size_t n_group, const std::uint8_t* passive) {
    const arma::uword k = G.n_rows;
    idx_.clear();
    for (arma::uword i = 0; i < k; ++i)
      if (passive[i]) idx_.push_back(i);
    const arma::uword p = idx_.size();
    L_.set_size(p, p);
    for (arma::uword b = 0; b < p; ++b)
      for (arma::uword a = 0; a < p; ++a) L_(a, b) = G(idx_[a], idx_[b]);
    if (!cholesky(L_)) {
      solve_group_singular(G, Rt, X, group, n_group);
      return;
    }
    z_.set_size(p);
    for (std::size_t g = 0; g < n_group; ++g) {
      const arma::uword c = group[g];
      eT* x = X.colptr(c);
      for (arma::uword i = 0; i < k; ++i) x[i] = eT(0);
      for (arma::uword a = 0; a < p; ++a) {  // L z = r_P
        eT v = Rt(idx_[a], c);
        for (arma::uword t = 0; t < a; ++t) v -= L_(a, t) * z_[t];
        z_[a] = v / L_(a, a);
      }
      for (arma::uword a = p; a-- > 0;) {  // L^T x_P = z
        eT v = z_[a];
        for (arma::uword t = a + 1; t < p; ++t) v -= L_(t, a) * x[idx_[t]];
        x[idx_[a]] = v / L_(a, a);
      }
      update_y(G, Rt, X, c);
    }
  }

  // y = G x - r for column c, exactly zero on the passive set.
  void update_y(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, const arma::Mat<eT>& X,
                arma::uword c) {
    const arma::uword k = G.n_rows;
    const eT* x = X.colptr(c);
    const std::uint8_t* passive = &passive_[static_cast<std::size_t>(c) * k];
    eT* y = Y_.colptr(c);
    for (arma::uword i = 0; i < k; ++i) y[i] = -Rt(i, c);
    for (arma::uword a : idx_) {
      const eT xa = x[a];
      const eT* g = G.colptr(a);
      for (arma::uword i = 0; i < k; ++i) y[i] += g[i] * xa;
    }
    for (arma::uword i = 0; i < k; ++i)
      if (passive[i]) y[i] = eT(0);
  }

  // In-place lower Cholesky factor; false when the matrix is not
  // numerically positive definite.
  static bool cholesky(arma::Mat<eT>& A) {
    const arma::uword p = A.n_rows;
    for (arma::uword j = 0; j < p; ++j) {
      eT d = A(j, j);
      for (arma::uword t = 0; t < j; ++t) d -= A(j, t) * A(j, t);
      if (!(d > std::numeric_limits<eT>::epsilon() * A(j, j) * eT(p))) return false;
      d = std::sqrt(d);
      A(j, j) = d;
      for (arma::uword i = j + 1; i < p; ++i) {
        eT v = A(i, j);
        for (arma::uword t = 0; t < j; ++t) v -= A(i, t) * A(j, t);
        A(i, j) = v / d;
      }
    }
    return true;
  }

  // A singular passive block (duplicate or zero columns in the other
  // factor): the minimum-norm least-squares solution still minimizes.
  void solve_group_singular(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, arma::Mat<eT>& X,
                            const arma::uword* group, std::size_t n_group) {
    const arma::uvec idx = arma::conv_to<arma::uvec>::from(idx_);
    const arma::uvec cols(const_cast<arma::uword*>(group), n_group, false, true);
    arma::Mat<eT> sol;
    if (idx.is_empty() ||
        !arma::solve(sol, arma::Mat<eT>(G.submat(idx, idx)), arma::Mat<eT>(Rt.submat(idx, cols)),
                     arma::solve_opts::force_approx))
      sol.zeros(idx.n_elem, n_group);
    for (std::size_t g = 0; g < n_group; ++g) {
      eT* x = X.colptr(group[g]);
      for (arma::uword i = 0; i < X.n_rows; ++i) x[i] = eT(0);
      for (arma::uword a = 0; a < idx.n_elem; ++a) x[idx[a]] = sol(a, g);
      update_y(G, Rt, X, group[g]);
    }
  }

  std::vector<std::uint8_t> passive_;
  std::vector<arma::uword> idx_;
  arma::Mat<eT> L_;
  arma::Col<eT> z_;
  std::vector<int> alpha_, beta_;
  arma::Mat<eT> Y_;
  double g_max_ = 0;
};

}  // namespace unmix::rules
