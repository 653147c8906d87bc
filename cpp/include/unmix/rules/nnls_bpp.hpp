#pragma once
#include <algorithm>
#include <armadillo>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

#include "../kernels/simd.hpp"

namespace unmix::rules {

// Non-negative least squares with many right-hand sides by block principal
// pivoting (Kim & Park, SIAM J. Sci. Comput. 33(6), 2011). For every row r
// of R it solves
//     min_{x >= 0}  1/2 x^T G x - r^T x      (G symmetric positive semidefinite)
// exactly: it exchanges whole blocks of variables between the passive set
// (x free) and the active set (x = 0) until the KKT conditions
//     x >= 0,  y = G x - r >= 0,  x .* y = 0
// hold. The solve is warm-started from the passive set of the X passed in.
// With `simplex`, every x must also sum to one: the passive solve carries the
// equality's multiplier mu (x_P = G_PP^-1 (r_P - mu 1)) and the dual becomes
// y = G x - r + mu 1; the pivoting is unchanged.
//
// The rows are solved a block at a time, transposed into contiguous columns
// that stay in cache for all the exchange rounds. Within a block, the columns
// with equal passive sets share one Cholesky factorization and go through
// the solves, the duals and the exchange a tile at a time, the innermost
// loops running across the tile. A row's arithmetic does not depend on which
// rows share its block, factorization or tile, so its solution does not
// depend on the other rows of the call and a distributed run equals the
// serial one; only a singular passive block, solved by LAPACK for the whole
// group at once, may differ in the last bits.
template <typename eT>
class BlockPivotingNNLS;

namespace detail {
// The solver compiled for each instruction set (kernels/simd.hpp): its
// loops across a tile of columns then run on the widest vectors the CPU has.
template <typename eT>
int bpp_baseline(BlockPivotingNNLS<eT>& s, const arma::Mat<eT>& G, const arma::Mat<eT>& R,
                 arma::Mat<eT>& X) {
  return s.solve_all(G, R, X);
}
#if defined(UNMIX_X86_DISPATCH)
template <typename eT>
UNMIX_TARGET_AVX2 int bpp_avx2(BlockPivotingNNLS<eT>& s, const arma::Mat<eT>& G, const arma::Mat<eT>& R,
                               arma::Mat<eT>& X) {
  return s.solve_all(G, R, X);
}
template <typename eT>
UNMIX_TARGET_AVX512 int bpp_avx512(BlockPivotingNNLS<eT>& s, const arma::Mat<eT>& G,
                                   const arma::Mat<eT>& R, arma::Mat<eT>& X) {
  return s.solve_all(G, R, X);
}
#endif
}  // namespace detail

template <typename eT>
class BlockPivotingNNLS {
 public:
  // R, X: N x k, one problem per row. On return X holds the solutions.
  // Returns the number of exchange rounds (0 when the warm start was already
  // optimal).
  int solve(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& X,
            bool simplex = false) {
    simplex_ = simplex;
#if defined(UNMIX_X86_DISPATCH)
    switch (kernels::isa()) {
      case kernels::Isa::avx512: return detail::bpp_avx512(*this, G, R, X);
      case kernels::Isa::avx2: return detail::bpp_avx2(*this, G, R, X);
      default: break;
    }
#endif
    return detail::bpp_baseline(*this, G, R, X);
  }

 private:
  template <typename T>
  friend int detail::bpp_baseline(BlockPivotingNNLS<T>&, const arma::Mat<T>&, const arma::Mat<T>&,
                                  arma::Mat<T>&);
#if defined(UNMIX_X86_DISPATCH)
  template <typename T>
  friend int detail::bpp_avx2(BlockPivotingNNLS<T>&, const arma::Mat<T>&, const arma::Mat<T>&,
                              arma::Mat<T>&);
  template <typename T>
  friend int detail::bpp_avx512(BlockPivotingNNLS<T>&, const arma::Mat<T>&, const arma::Mat<T>&,
                                arma::Mat<T>&);
#endif

  UNMIX_ALWAYS_INLINE int solve_all(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& X) {
    const arma::uword k = G.n_rows, N = R.n_rows;
    words_ = (k + 63) / 64;
    if (X.n_rows != N || X.n_cols != k) X.zeros(N, k);
    if (k == 0 || N == 0) return 0;
    g_max_ = static_cast<double>(arma::abs(G).max());
    // The factorizations of G's passive blocks hold for as long as G does:
    // across the exchange rounds, the blocks of rows and the calls of one
    // half-step (which all pass the same G).
    if (!arma::approx_equal(G, cached_G_, "absdiff", 0)) {
      cached_G_ = G;
      factors_.clear();
      store_.clear();
      hits_ = misses_ = 0;
    }
    // 2^18 values per block buffer (2 MiB in double): the block's right-hand
    // sides and solutions stay in cache through every round, and a block
    // holds enough columns for many to share a passive set and its
    // factorization (measured: smaller blocks are slower at k = 6 and 16).
    const arma::uword block = std::max<arma::uword>(64, ((arma::uword(1) << 18) + k - 1) / k);
    if (Rt_.n_rows != k || Rt_.n_cols < std::min(block, N)) {
      Rt_.set_size(k, std::min(block, N));
      X_.set_size(k, std::min(block, N));
    }
    int rounds = 0;
    for (arma::uword first = 0; first < N; first += block) {
      const arma::uword n = std::min(block, N - first);
      transpose_in(R, first, n, Rt_);
      transpose_in(X, first, n, X_);
      rounds = std::max(rounds, solve_block(G, n));
      const eT* src = X_.memptr();
      for (arma::uword j = 0; j < k; ++j) {
        eT* dst = X.colptr(j) + first;
        for (arma::uword c = 0; c < n; ++c) dst[c] = src[c * k + j];
      }
    }
    return rounds;
  }

  static constexpr std::size_t tile = 32;

  // Rows first .. first + n - 1 of A into the first n columns of At.
  static UNMIX_ALWAYS_INLINE void transpose_in(const arma::Mat<eT>& A, arma::uword first, arma::uword n,
                           arma::Mat<eT>& At) {
    const arma::uword k = A.n_cols;
    eT* dst = At.memptr();
    for (arma::uword j = 0; j < k; ++j) {
      const eT* src = A.colptr(j) + first;
      for (arma::uword c = 0; c < n; ++c) dst[c * k + j] = src[c];
    }
  }

  // Solves the first n columns of Rt_ into X_, warm-started from X_.
  UNMIX_ALWAYS_INLINE int solve_block(const arma::Mat<eT>& G, arma::uword n) {
    const arma::uword k = G.n_rows;
    sets_.assign(n * words_, 0);
    r_max_.resize(n);
    for (arma::uword c = 0; c < n; ++c) {  // branch-free: the signs are random
      const eT* x = X_.colptr(c);
      const eT* r = Rt_.colptr(c);
      std::uint64_t* s = set(c);
      double r_max = 0;
      for (arma::uword i = 0; i < k; ++i) {
        s[i >> 6] |= std::uint64_t(x[i] > 0) << (i & 63);
        r_max = std::max(r_max, std::abs(static_cast<double>(r[i])));
      }
      r_max_[c] = r_max;
    }
    if (simplex_) {
      // A point of the simplex has a positive entry: start an empty column
      // at its best vertex, argmin 1/2 G_ii - r_i.
      for (arma::uword c = 0; c < n; ++c) {
        if (!empty(set(c))) continue;
        const eT* r = Rt_.colptr(c);
        arma::uword best = 0;
        for (arma::uword i = 1; i < k; ++i)
          if (0.5 * G(i, i) - r[i] < 0.5 * G(best, best) - r[best]) best = i;
        flip(set(c), best);
      }
    }
    alpha_.assign(n, 3);
    beta_.assign(n, static_cast<int>(k) + 1);

    // Kim & Park's rule terminates in exact arithmetic; the cap only guards
    // against rounding making it cycle on a degenerate problem.
    const int max_rounds = 10 * static_cast<int>(k) + 100;
    todo_.resize(n);
    std::iota(todo_.begin(), todo_.end(), arma::uword(0));
    int round = 0;
    for (;; ++round) {
      next_.clear();
      solve_passive(G, todo_);  // and the exchange, which fills next_
      if (next_.empty() || round == max_rounds) break;
      todo_.swap(next_);
    }
    for (arma::uword c = 0; c < n; ++c) {
      eT* x = X_.colptr(c);
      eT total = 0;
      for (arma::uword i = 0; i < k; ++i) {
        x[i] = std::max(x[i], eT(0));  // rounding-level negatives
        total += x[i];
      }
      if (simplex_ && total > 0)
        for (arma::uword i = 0; i < k; ++i) x[i] /= total;
    }
    return round;
  }

  // A column's passive set: bit i of word i / 64 is set when x_i is free.
  UNMIX_ALWAYS_INLINE std::uint64_t* set(arma::uword c) { return &sets_[c * words_]; }
  // Bit i of a set whose words are `stride` apart.
  static UNMIX_ALWAYS_INLINE bool has(const std::uint64_t* s, arma::uword i, std::size_t stride = 1) {
    return (s[(i >> 6) * stride] >> (i & 63)) & 1;
  }
  static UNMIX_ALWAYS_INLINE void flip(std::uint64_t* s, arma::uword i) { s[i >> 6] ^= std::uint64_t(1) << (i & 63); }
  UNMIX_ALWAYS_INLINE bool empty(const std::uint64_t* s) const {
    return std::all_of(s, s + words_, [](std::uint64_t w) { return w == 0; });
  }

  // Orders cols so that equal passive sets are adjacent (a stable radix sort
  // on the bytes of the sets), then solves each distinct set once; the
  // columns not yet optimal go to next_.
  UNMIX_ALWAYS_INLINE void solve_passive(const arma::Mat<eT>& G, std::vector<arma::uword>& cols) {
    const arma::uword n_bytes = (G.n_rows + 7) / 8;
    auto digit = [&](arma::uword c, arma::uword byte) {
      return static_cast<unsigned>(sets_[c * words_ + byte / 8] >> (8 * (byte % 8))) & 0xffu;
    };
    for (arma::uword byte = 0; byte < n_bytes; ++byte) {
      std::array<std::size_t, 257> start{};
      for (arma::uword c : cols) ++start[digit(c, byte) + 1];
      if (std::find(start.begin() + 1, start.end(), cols.size()) != start.end()) continue;
      std::partial_sum(start.begin(), start.end(), start.begin());
      sorted_.resize(cols.size());
      for (arma::uword c : cols) sorted_[start[digit(c, byte)]++] = c;
      cols.swap(sorted_);
    }
    for (std::size_t begin = 0; begin < cols.size();) {
      const std::uint64_t* passive = set(cols[begin]);
      std::size_t end = begin + 1;
      while (end < cols.size() && std::equal(passive, passive + words_, set(cols[end]))) ++end;
      solve_group(G, &cols[begin], end - begin, passive);
      begin = end;
    }
  }

  // One Cholesky factorization of G on the passive set, then the group's
  // columns a tile at a time: x_P (and mu) into tile_, then finish_tile.
  UNMIX_ALWAYS_INLINE void solve_group(const arma::Mat<eT>& G, const arma::uword* group, std::size_t n_group,
                   const std::uint64_t* passive) {
    const arma::uword k = G.n_rows;
    idx_.clear();
    act_.clear();
    for (arma::uword i = 0; i < k; ++i) (has(passive, i) ? idx_ : act_).push_back(i);
    const arma::uword p = idx_.size();
    if (!factor(G, passive, p)) {
      solve_group_singular(G, group, n_group);
      return;
    }
    const eT* b = Lp_ + 2 * p * p;  // G_PP^-1 1 on the simplex, shared by the group
    const eT sum_b = simplex_ ? b[p] : eT(0);
    for (std::size_t first = 0; first < n_group; first += tile) {
      const std::size_t m = std::min(tile, n_group - first);
      const arma::uword* cols = group + first;
      tile_.resize(p * m);
      for (std::size_t j = 0; j < m; ++j) {
        const eT* r = Rt_.colptr(cols[j]);
        for (arma::uword a = 0; a < p; ++a) tile_[a * m + j] = r[idx_[a]];
      }
      cholesky_solve(tile_.data(), m);
      mu_.assign(m, eT(0));
      if (simplex_) {
        for (arma::uword a = 0; a < p; ++a)
          for (std::size_t j = 0; j < m; ++j) mu_[j] += tile_[a * m + j];
        for (std::size_t j = 0; j < m; ++j) mu_[j] = (mu_[j] - eT(1)) / sum_b;
        for (arma::uword a = 0; a < p; ++a)
          for (std::size_t j = 0; j < m; ++j) tile_[a * m + j] -= mu_[j] * b[a];
      }
      finish_tile(G, cols, m);
    }
  }

  // Points Lp_ at L, U = L^T (and on the simplex G_PP^-1 1 and its sum)
  // for G's block on the passive set: from the cache when this set was
  // factored before under the same G, else factored now and kept (up to
  // 2^20 values). False when the block is numerically singular.
  UNMIX_ALWAYS_INLINE bool factor(const arma::Mat<eT>& G, const std::uint64_t* passive, arma::uword p) {
    key_.assign(reinterpret_cast<const char*>(passive), words_ * sizeof(std::uint64_t));
    p_ = p;
    const auto found = factors_.find(key_);
    if (found != factors_.end()) {
      ++hits_;
      if (found->second == singular) return false;
      Lp_ = store_.data() + found->second;
      return true;
    }
    ++misses_;
    // Factored in place: at the end of the store while it has room (2^19
    // values) and the sets recur (early in a fit most are new, and keeping
    // them costs more than it saves), else in a scratch buffer.
    const std::size_t size = 2 * p * p + (simplex_ ? p + 1 : 0);
    const bool keep = store_.size() + size <= (std::size_t(1) << 19) && (misses_ <= 64 || 2 * hits_ >= misses_);
    const std::size_t at = store_.size();
    if (keep) {
      if (store_.capacity() < at + size) store_.reserve(std::max(2 * store_.capacity(), at + size));
      store_.resize(at + size);
    } else {
      local_.resize(size);
    }
    eT* L = keep ? store_.data() + at : local_.data();
    for (arma::uword b = 0; b < p; ++b)
      for (arma::uword a = 0; a < p; ++a) L[a + b * p] = G.at(idx_[a], idx_[b]);
    if (!cholesky(L, p)) {
      if (keep) {
        store_.resize(at);
        factors_.emplace(key_, singular);
      }
      return false;
    }
    eT* U = L + p * p;
    for (arma::uword b = 0; b < p; ++b)
      for (arma::uword a = 0; a < p; ++a) U[a + b * p] = L[b + a * p];
    Lp_ = L;
    if (simplex_) {
      eT* b = L + 2 * p * p;
      std::fill(b, b + p, eT(1));
      cholesky_solve(b, 1);
      eT sum = 0;
      for (arma::uword a = 0; a < p; ++a) sum += b[a];
      b[p] = sum;
    }
    if (keep) factors_.emplace(key_, at);
    return true;
  }

  // Solves L L^T X = B in place for m columns stored row-wise, B(a, j) at
  // b[a * m + j], by columns of L and of U = L^T: every inner loop is
  // contiguous and free of chains, across the tile's columns when there are
  // several, down a factor column when there is one.
  UNMIX_ALWAYS_INLINE void cholesky_solve(eT* b, std::size_t m) const {
    if (m == 1)
      substitute<1>(b, 1);
    else
      substitute<0>(b, m);
  }

  template <std::size_t M>
  UNMIX_ALWAYS_INLINE void substitute(eT* b, std::size_t n_cols) const {
    const std::size_t m = M ? M : n_cols;
    const arma::uword p = p_;
    const eT* L = Lp_;
    const eT* U = Lp_ + p * p;
    for (arma::uword t = 0; t < p; ++t) {
      const eT* l = L + t * p;
      eT* xt = b + t * m;
      const eT inv = eT(1) / l[t];
      for (std::size_t j = 0; j < m; ++j) xt[j] *= inv;
      for (arma::uword a = t + 1; a < p; ++a)
        for (std::size_t j = 0; j < m; ++j) b[a * m + j] -= l[a] * xt[j];
    }
    for (arma::uword t = p; t-- > 0;) {
      const eT* u = U + t * p;
      eT* xt = b + t * m;
      const eT inv = eT(1) / u[t];
      for (std::size_t j = 0; j < m; ++j) xt[j] *= inv;
      for (arma::uword a = 0; a < t; ++a)
        for (std::size_t j = 0; j < m; ++j) b[a * m + j] -= u[a] * xt[j];
    }
  }

  // Writes the tile's solutions x_P (tile_, row-wise) to X_, computes their
  // duals y = G x - r (+ mu on the simplex) and runs the exchange; the
  // columns not yet optimal go to next_.
  UNMIX_ALWAYS_INLINE void finish_tile(const arma::Mat<eT>& G, const arma::uword* cols, std::size_t m) {
    if (m == 1)
      finish_tile<1>(G, cols, 1);
    else
      finish_tile<0>(G, cols, m);
  }

  template <std::size_t M>
  UNMIX_ALWAYS_INLINE void finish_tile(const arma::Mat<eT>& G, const arma::uword* cols, std::size_t n_cols) {
    const std::size_t m = M ? M : n_cols;
    const arma::uword k = G.n_rows, p = idx_.size();
    const eT* x = tile_.data();
    for (std::size_t j = 0; j < m; ++j) {
      eT* xc = X_.colptr(cols[j]);
      std::fill(xc, xc + k, eT(0));
      for (arma::uword a = 0; a < p; ++a) xc[idx_[a]] = x[a * m + j];
    }
    // The tolerances scale with the column: max |x| first, then eps times.
    const double eps = 16.0 * static_cast<double>(k) * std::numeric_limits<eT>::epsilon();
    tol_x_.assign(m, 0.0);
    for (arma::uword a = 0; a < p; ++a)
      for (std::size_t j = 0; j < m; ++j)
        tol_x_[j] = std::max(tol_x_[j], std::abs(static_cast<double>(x[a * m + j])));
    tol_y_.resize(m);
    for (std::size_t j = 0; j < m; ++j) {
      tol_y_[j] = eps * (r_max_[cols[j]] + g_max_ * tol_x_[j]);
      tol_x_[j] *= eps;
    }
    // The infeasible variables, as bit masks (variable i at bit i % 64 of
    // word i / 64, word w of column j at bad_[w * m + j]); branch-free, as
    // the outcomes are random.
    bad_.assign(words_ * m, 0);
    for (arma::uword a = 0; a < p; ++a) {
      const std::uint64_t bit = std::uint64_t(1) << (idx_[a] & 63);
      std::uint64_t* bad = &bad_[(idx_[a] >> 6) * m];
      for (std::size_t j = 0; j < m; ++j) bad[j] |= x[a * m + j] < -tol_x_[j] ? bit : 0;
    }
    // Row-wise like tile_, zero on the passive set. The loop over a is
    // outermost, so that the sums of narrow tiles do not chain; a lone
    // column runs down the whole columns of G, which vectorizes.
    y_.assign(k * m, eT(0));
    if (M == 1) {
      const eT* r = Rt_.colptr(cols[0]);
      for (arma::uword i = 0; i < k; ++i) y_[i] = mu_[0] - r[i];
      for (arma::uword a = 0; a < p; ++a) {
        const eT* g = G.colptr(idx_[a]);
        for (arma::uword i = 0; i < k; ++i) y_[i] += g[i] * x[a];
      }
      for (arma::uword i : idx_) y_[i] = eT(0);
    } else {
      for (arma::uword i : act_)
        for (std::size_t j = 0; j < m; ++j) y_[i * m + j] = mu_[j] - Rt_.at(i, cols[j]);
      for (arma::uword a = 0; a < p; ++a) {
        const eT* g = G.colptr(idx_[a]);
        for (arma::uword i : act_)
          for (std::size_t j = 0; j < m; ++j) y_[i * m + j] += g[i] * x[a * m + j];
      }
    }
    for (arma::uword i : act_) {
      const eT* y = &y_[i * m];
      const std::uint64_t bit = std::uint64_t(1) << (i & 63);
      std::uint64_t* bad = &bad_[(i >> 6) * m];
      for (std::size_t j = 0; j < m; ++j) bad[j] |= y[j] < -tol_y_[j] ? bit : 0;
    }
    for (std::size_t j = 0; j < m; ++j)
      if (exchange(cols[j], j, m)) next_.push_back(cols[j]);
  }

  // Flips the infeasible variables of column c (column j of the tile) in its
  // passive set following Kim & Park's full-exchange rule with Murty's
  // single-variable backup. Returns false when column c is already optimal.
  UNMIX_ALWAYS_INLINE bool exchange(arma::uword c, std::size_t j, std::size_t m) {
    int n_bad = 0;
    for (arma::uword w = 0; w < words_; ++w)
      for (std::uint64_t bits = bad_[w * m + j]; bits != 0; bits &= bits - 1) ++n_bad;
    if (n_bad == 0) return false;

    std::uint64_t* p = set(c);
    if (n_bad < beta_[c] || alpha_[c] > 0) {
      if (n_bad < beta_[c]) {
        beta_[c] = n_bad;
        alpha_[c] = 3;
      } else {
        --alpha_[c];
      }
      for (arma::uword w = 0; w < words_; ++w) p[w] ^= bad_[w * m + j];
    } else {  // backup rule: flip only the last infeasible variable
      arma::uword last = X_.n_rows - 1;
      while (!has(&bad_[j], last, m)) --last;
      flip(p, last);
    }
    if (simplex_ && empty(p)) {
      // Some variable of the simplex is positive: keep the one whose dual
      // is most negative.
      arma::uword best = 0;
      for (arma::uword i = 1; i < X_.n_rows; ++i)
        if (y_[i * m + j] < y_[best * m + j]) best = i;
      flip(p, best);
    }
    return true;
  }

  // In-place lower Cholesky factor; false when the matrix is not
  // numerically positive definite. Left-looking by columns: column j less
  // the sum over t < j of column t times L(j, t), a matrix-vector product
  // whose partial sums stay in registers for all t (the plain loop stored
  // and reloaded them once per t, and measured twice as slow at k = 64).
  static UNMIX_ALWAYS_INLINE bool cholesky(eT* A, arma::uword p) {
    constexpr int W = 64 / sizeof(eT);
    using V = kernels::Vec<eT, W>;
    for (arma::uword j = 0; j < p; ++j) {
      const eT a_jj = A[j + j * p];
      eT* aj = A + j * p;
      arma::uword i = j;
      for (; i + 2 * W <= p; i += 2 * W) {
        V s0 = kernels::load<W>(aj + i), s1 = kernels::load<W>(aj + i + W);
        for (arma::uword t = 0; t < j; ++t) {
          const eT* at = A + t * p + i;
          const eT l = A[j + t * p];
          s0 -= kernels::load<W>(at) * l;
          s1 -= kernels::load<W>(at + W) * l;
        }
        kernels::store<W>(aj + i, s0);
        kernels::store<W>(aj + i + W, s1);
      }
      for (; i + W <= p; i += W) {
        V s = kernels::load<W>(aj + i);
        for (arma::uword t = 0; t < j; ++t) s -= kernels::load<W>(A + t * p + i) * A[j + t * p];
        kernels::store<W>(aj + i, s);
      }
      if (i < p && p >= arma::uword(W)) {
        // The last W rows of the column (overlapping rows already done,
        // which are recomputed from their new values and not stored).
        const arma::uword from = p - W;
        V s = kernels::load<W>(aj + from);
        for (arma::uword t = 0; t < j; ++t) s -= kernels::load<W>(A + t * p + from) * A[j + t * p];
        for (arma::uword r = i; r < p; ++r) aj[r] = s[r - from];
      } else {
        for (; i < p; ++i) {
          eT s = aj[i];
          for (arma::uword t = 0; t < j; ++t) s -= A[i + t * p] * A[j + t * p];
          aj[i] = s;
        }
      }
      if (!(aj[j] > std::numeric_limits<eT>::epsilon() * a_jj * eT(p))) return false;
      const eT d = std::sqrt(aj[j]), inv = eT(1) / d;
      aj[j] = d;
      for (arma::uword r = j + 1; r < p; ++r) aj[r] *= inv;
    }
    return true;
  }

  // A singular passive block (duplicate or zero columns in the other
  // factor): the minimum-norm least-squares solution still minimizes. On the
  // simplex, solve the bordered system [G_PP 1; 1^T 0] [x; mu] = [r_P; 1].
  void solve_group_singular(const arma::Mat<eT>& G, const arma::uword* group, std::size_t n_group) {
    const arma::uvec idx = arma::conv_to<arma::uvec>::from(idx_);
    const arma::uword p = idx.n_elem, extra = simplex_ ? 1 : 0;
    const arma::uvec cols(const_cast<arma::uword*>(group), n_group, false, true);
    arma::Mat<eT> A(p + extra, p + extra, arma::fill::zeros), B(p + extra, n_group);
    if (p > 0) {
      A.submat(0, 0, p - 1, p - 1) = G.submat(idx, idx);
      B.rows(0, p - 1) = Rt_.submat(idx, cols);
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
    for (std::size_t first = 0; first < n_group; first += tile) {
      const std::size_t m = std::min(tile, n_group - first);
      tile_.resize(p * m);
      mu_.assign(m, eT(0));
      for (std::size_t j = 0; j < m; ++j) {
        for (arma::uword a = 0; a < p; ++a) tile_[a * m + j] = sol(a, first + j);
        if (simplex_) mu_[j] = sol(p, first + j);
      }
      finish_tile(G, group + first, m);
    }
  }

  bool simplex_ = false;
  arma::uword words_ = 1;
  double g_max_ = 0;
  arma::Mat<eT> Rt_, X_;  // the block's rows of R and X as columns
  std::vector<double> r_max_, tol_x_, tol_y_;
  std::vector<std::uint64_t> sets_, bad_;
  std::vector<int> alpha_, beta_;
  std::vector<arma::uword> todo_, next_, sorted_, idx_, act_;
  std::vector<eT> tile_, mu_, y_;
  // The factors of the passive blocks of cached_G_: key (the set's words as
  // bytes) -> offset in store_ of L, U = L^T (p x p each) and, on the
  // simplex, G_PP^-1 1 and its sum; `singular` for a singular block.
  static constexpr std::size_t singular = ~std::size_t(0);
  arma::Mat<eT> cached_G_;
  std::unordered_map<std::string, std::size_t> factors_;
  std::vector<eT> store_, local_;
  std::string key_;
  std::size_t hits_ = 0, misses_ = 0;
  const eT* Lp_ = nullptr;  // the current factor: L, then U, then the simplex's b
  arma::uword p_ = 0;
};

}  // namespace unmix::rules
