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
// With `simplex`, every x must also sum to one: the passive solve carries the
// equality's multiplier mu (x_P = G_PP^-1 (r_P - mu 1)) and the dual becomes
// y = G x - r + mu 1; the pivoting is unchanged.
template <typename eT>
class BlockPivotingNNLS {
 public:
  // Rt, X: k x N. On return X holds the solutions. Returns the number of
  // exchange rounds (0 when the warm start was already optimal).
  int solve(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, arma::Mat<eT>& X,
            bool simplex = false) {
    const arma::uword k = G.n_rows, N = Rt.n_cols;
    simplex_ = simplex;
    if (X.n_rows != k || X.n_cols != N) X.zeros(k, N);
    passive_.resize(static_cast<std::size_t>(k) * N);
    for (arma::uword i = 0; i < X.n_elem; ++i) passive_[i] = X[i] > 0;
    if (simplex_) {
      // A point of the simplex has a positive entry: start an empty column
      // at its best vertex, argmin 1/2 G_ii - r_i.
      for (arma::uword c = 0; c < N; ++c) {
        std::uint8_t* p = &passive_[static_cast<std::size_t>(c) * k];
        if (std::find(p, p + k, 1) != p + k) continue;
        arma::uword best = 0;
        for (arma::uword i = 1; i < k; ++i)
          if (0.5 * G(i, i) - Rt(i, c) < 0.5 * G(best, best) - Rt(best, c)) best = i;
        p[best] = 1;
      }
    }
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
    if (simplex_)
      for (arma::uword c = 0; c < N; ++c) {
        const eT total = arma::accu(X.col(c));
        if (total > 0) X.col(c) /= total;
      }
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
      keep_one_passive(p, y, k);
      return true;
    }
    for (arma::uword i = 0; i < k; ++i)
      if (infeasible(i)) p[i] ^= 1;
    keep_one_passive(p, y, k);
    return true;
  }

  // On the simplex some variable is positive: if the exchange emptied the
  // passive set, keep the one whose dual is most negative.
  void keep_one_passive(std::uint8_t* p, const eT* y, arma::uword k) const {
    if (!simplex_ || std::find(p, p + k, 1) != p + k) return;
    arma::uword best = 0;
    for (arma::uword i = 1; i < k; ++i)
      if (y[i] < y[best]) best = i;
    p[best] = 1;
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
    rhs_.set_size(p);
    sol_.set_size(p);
    eT sum_b = 0;
    if (simplex_) {  // b = G_PP^-1 1, shared by the group
      rhs_.ones();
      cholesky_solve(L_, rhs_, b_);
      sum_b = arma::accu(b_);
    }
    for (std::size_t g = 0; g < n_group; ++g) {
      const arma::uword c = group[g];
      for (arma::uword a = 0; a < p; ++a) rhs_[a] = Rt(idx_[a], c);
      cholesky_solve(L_, rhs_, sol_);
      eT mu = 0;
      if (simplex_) {
        mu = (arma::accu(sol_) - eT(1)) / sum_b;
        sol_ -= mu * b_;
      }
      eT* x = X.colptr(c);
      for (arma::uword i = 0; i < k; ++i) x[i] = eT(0);
      for (arma::uword a = 0; a < p; ++a) x[idx_[a]] = sol_[a];
      update_y(G, Rt, X, c, mu);
    }
  }

  // Solves L L^T x = b by forward and back substitution.
  static void cholesky_solve(const arma::Mat<eT>& L, const arma::Col<eT>& b, arma::Col<eT>& x) {
    const arma::uword p = L.n_rows;
    x.set_size(p);
    for (arma::uword a = 0; a < p; ++a) {
      eT v = b[a];
      for (arma::uword t = 0; t < a; ++t) v -= L(a, t) * x[t];
      x[a] = v / L(a, a);
    }
    for (arma::uword a = p; a-- > 0;) {
      eT v = x[a];
      for (arma::uword t = a + 1; t < p; ++t) v -= L(t, a) * x[t];
      x[a] = v / L(a, a);
    }
  }

  // y = G x - r (+ mu on the simplex) for column c, exactly zero on the
  // passive set.
  void update_y(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, const arma::Mat<eT>& X,
                arma::uword c, eT mu) {
    const arma::uword k = G.n_rows;
    const eT* x = X.colptr(c);
    const std::uint8_t* passive = &passive_[static_cast<std::size_t>(c) * k];
    eT* y = Y_.colptr(c);
    for (arma::uword i = 0; i < k; ++i) y[i] = mu - Rt(i, c);
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
  // factor): the minimum-norm least-squares solution still minimizes. On the
  // simplex, solve the bordered system [G_PP 1; 1^T 0] [x; mu] = [r_P; 1].
  void solve_group_singular(const arma::Mat<eT>& G, const arma::Mat<eT>& Rt, arma::Mat<eT>& X,
                            const arma::uword* group, std::size_t n_group) {
    const arma::uvec idx = arma::conv_to<arma::uvec>::from(idx_);
    const arma::uword p = idx.n_elem, extra = simplex_ ? 1 : 0;
    const arma::uvec cols(const_cast<arma::uword*>(group), n_group, false, true);
    arma::Mat<eT> A(p + extra, p + extra, arma::fill::zeros), B(p + extra, n_group);
    if (p > 0) {
      A.submat(0, 0, p - 1, p - 1) = G.submat(idx, idx);
      B.rows(0, p - 1) = Rt.submat(idx, cols);
    }
    if (simplex_) {
      A.row(p).fill(eT(1));
      A.col(p).fill(eT(1));
      A(p, p) = eT(0);
      B.row(p).fill(eT(1));
    }
    arma::Mat<eT> sol;
    if (A.is_empty() || !arma::solve(sol, A, B, arma::solve_opts::force_approx))
      sol.zeros(p + extra, n_group);
    for (std::size_t g = 0; g < n_group; ++g) {
      eT* x = X.colptr(group[g]);
      for (arma::uword i = 0; i < X.n_rows; ++i) x[i] = eT(0);
      for (arma::uword a = 0; a < p; ++a) x[idx[a]] = sol(a, g);
      update_y(G, Rt, X, group[g], simplex_ ? sol(p, g) : eT(0));
    }
  }

  std::vector<std::uint8_t> passive_;
  std::vector<arma::uword> idx_;
  arma::Mat<eT> L_;
  arma::Col<eT> rhs_, sol_, b_;
  bool simplex_ = false;
  std::vector<int> alpha_, beta_;
  arma::Mat<eT> Y_;
  double g_max_ = 0;
};

}  // namespace unmix::rules
