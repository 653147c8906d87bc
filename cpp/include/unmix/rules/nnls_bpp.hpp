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
// serial one.
//
// The pivoting's convergence proof needs G definite. A rank-deficient G is
// common (more components than the data has channels: G = H H^T of rank
// the channels; duplicate or dead components), and there the exchanges can
// cycle through singular passive blocks whose rounding-level pivots give
// huge x. So a numerically singular block is not solved: its rows, and the
// rows still pivoting at the round cap, go to an active-set method
// (active_set) that is exact on such problems, row by row, and whose answer
// is kept only if it is no worse than the warm start.
template <typename eT>
class BlockPivotingNNLS;

// The smallest pivot, relative to its diagonal entry, of a passive block
// taken as definite (see BlockPivotingNNLS::cholesky).
template <typename eT>
inline double pivot_tol() {
  return std::sqrt(static_cast<double>(std::numeric_limits<eT>::epsilon()));
}

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
      rounds = std::max(rounds, solve_block(G, n, X, first));
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

  // Solves the first n columns of Rt_ into X_, warm-started from X_, which
  // holds rows first .. first + n - 1 of X.
  UNMIX_ALWAYS_INLINE int solve_block(const arma::Mat<eT>& G, arma::uword n, const arma::Mat<eT>& X,
                                      arma::uword first) {
    const arma::uword k = G.n_rows;
    // A variable whose diagonal of G is zero has a zero row and column (G is
    // semidefinite) and is optimal at zero: starting it free would make
    // every passive block that holds it singular (a dead component).
    live_.assign(words_, 0);
    for (arma::uword i = 0; i < k; ++i) live_[i >> 6] |= std::uint64_t(G.at(i, i) > 0) << (i & 63);
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
      for (arma::uword w = 0; w < words_; ++w) s[w] &= live_[w];
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

    // Kim & Park's rule terminates in exact arithmetic when G is definite;
    // the cap guards against rounding making it cycle on a degenerate
    // problem. The columns that reach it go to the active-set method, which
    // is exact too but slower than a round: measured, converging columns
    // take at most 40 rounds (k = 12 to 150, cold and warm starts).
    const int max_rounds = 2 * static_cast<int>(k) + 40;
    todo_.resize(n);
    std::iota(todo_.begin(), todo_.end(), arma::uword(0));
    fallback_.clear();
    int round = 0;
    for (;; ++round) {
      next_.clear();
      solve_passive(G, todo_);  // and the exchange, which fills next_ (and fallback_)
      if (next_.empty() || round == max_rounds) break;
      todo_.swap(next_);
    }
    fallback_.insert(fallback_.end(), next_.begin(), next_.end());
    for (arma::uword c : fallback_) active_set(G, c, X.memptr() + first + c, X.n_rows);
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
  // columns a tile at a time: x_P (and mu) into tile_, then finish_tile. A
  // singular block sends its columns to the active-set method.
  UNMIX_ALWAYS_INLINE void solve_group(const arma::Mat<eT>& G, const arma::uword* group, std::size_t n_group,
                   const std::uint64_t* passive) {
    const arma::uword k = G.n_rows;
    idx_.clear();
    act_.clear();
    for (arma::uword i = 0; i < k; ++i) (has(passive, i) ? idx_ : act_).push_back(i);
    const arma::uword p = idx_.size();
    if (!factor(G, passive, p)) {
      fallback_.insert(fallback_.end(), group, group + n_group);
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
  // numerically positive definite: a pivot at most sqrt(eps) of its
  // diagonal entry (below, the solve would lose more than half the digits;
  // measured on G of rank below k, the singular blocks' rounding-level
  // pivots reach 1e-11 of the diagonal in double and 1e-4 in float, while
  // the regular blocks' of random and alternating problems stay above 1e-5
  // and 1e-2). Left-looking by columns: column j less
  // the sum over t < j of column t times L(j, t), a matrix-vector product
  // whose partial sums stay in registers for all t (the plain loop stored
  // and reloaded them once per t, and measured twice as slow at k = 64).
  static UNMIX_ALWAYS_INLINE bool cholesky(eT* A, arma::uword p) {
    constexpr int W = 64 / sizeof(eT);
    using V = kernels::Vec<eT, W>;
    const eT tol = static_cast<eT>(pivot_tol<eT>());
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
      if (!(aj[j] > tol * a_jj)) return false;
      const eT d = std::sqrt(aj[j]), inv = eT(1) / d;
      aj[j] = d;
      for (arma::uword r = j + 1; r < p; ++r) aj[r] *= inv;
    }
    return true;
  }

  // Lawson & Hanson's active-set method (Solving Least Squares Problems,
  // 1974, ch. 23) for column c alone, in double. From x = 0 (on the simplex,
  // from its best vertex) it frees the variable of most negative dual, solves
  // on the passive set and steps back to the boundary while that solution is
  // infeasible. It keeps the passive columns of G linearly independent, so
  // every block it solves is definite and every step lowers the objective,
  // whatever G's rank; each step updates the factor of G_PP by one row or
  // one rank-one change, O(k^2). On the simplex it solves with G + rho 1 1^T
  // and r + rho 1: on the simplex that changes the objective by a constant,
  // and it makes the blocks definite wherever the equality's bordered
  // system is regular (a zero column, for one). warm: the column's warm
  // start, entry i at warm[i * stride]; the answer is kept only if it is no
  // worse than a feasible warm start, so that a half-step never raises the
  // objective even where rounding stops the method short.
  void active_set(const arma::Mat<eT>& G, arma::uword c, const eT* warm, arma::uword stride) {
    const arma::uword k = G.n_rows;
    const eT* r = Rt_.colptr(c);
    const double rho = simplex_ ? std::max(static_cast<double>(G.diag().max()), 1.0e-300) : 0.0;
    auto g = [&](arma::uword i, arma::uword j) { return static_cast<double>(G.at(i, j)) + rho; };
    as_x_.assign(k, 0.0);
    as_z_.resize(k);
    as_y_.resize(k);
    as_b_.resize(k);
    as_L_.resize(k * k);
    as_state_.assign(k, at_zero);
    as_P_.clear();
    double* x = as_x_.data();
    double* z = as_z_.data();
    double* L = as_L_.data();  // row a of the lower factor of G_PP at L + a * k
    double mu = 0;             // the simplex equality's multiplier
    // Appends variable j to the passive set and its factor; false when j's
    // column of G depends on the passive ones'. The test is looser than
    // cholesky's: a variable enters only with a dual below the tolerance,
    // which a column in the span of the passive ones does not have (its
    // dual is a combination of theirs, zero), so this only guards against
    // rounding; sqrt(eps) here would exclude columns that improve the fit
    // (measured: duals down to -1e-6 left at k = 100 on 16 channels).
    auto append = [&](arma::uword j) {
      const arma::uword p = as_P_.size();
      double* l = L + p * k;
      double d = g(j, j);
      for (arma::uword a = 0; a < p; ++a) {
        const double* La = L + a * k;
        double s = g(as_P_[a], j);
        for (arma::uword b = 0; b < a; ++b) s -= La[b] * l[b];
        l[a] = s / La[a];
        d -= l[a] * l[a];
      }
      if (!(d > std::numeric_limits<eT>::epsilon() * g(j, j))) return false;
      l[p] = std::sqrt(d);
      as_P_.push_back(j);
      as_state_[j] = in_passive;
      return true;
    };
    // Drops the variable at position q: the rows below move up, and their
    // trailing block takes the rank-one update by the column that went.
    auto remove = [&](arma::uword q) {
      const arma::uword p = as_P_.size();
      as_state_[as_P_[q]] = at_zero;
      double* v = as_b_.data();
      for (arma::uword i = q + 1; i < p; ++i) {
        const double* from = L + i * k;
        double* to = L + (i - 1) * k;
        std::copy(from, from + q, to);
        v[i - q - 1] = from[q];
        std::copy(from + q + 1, from + i + 1, to + q);
      }
      for (arma::uword t = q; t + 1 < p; ++t) {  // Givens rotations
        double& d = L[t * k + t];
        const double h = std::hypot(d, v[t - q]), cs = h / d, sn = v[t - q] / d;
        d = h;
        for (arma::uword u = t + 1; u + 1 < p; ++u) {
          double& l = L[u * k + t];
          l = (l + sn * v[u - q]) / cs;
          v[u - q] = cs * v[u - q] - sn * l;
        }
      }
      as_P_.erase(as_P_.begin() + std::ptrdiff_t(q));
    };
    auto substitute = [&](double* v) {  // v <- G_PP^-1 v
      const arma::uword p = as_P_.size();
      for (arma::uword a = 0; a < p; ++a) {
        const double* La = L + a * k;
        double s = v[a];
        for (arma::uword b = 0; b < a; ++b) s -= La[b] * v[b];
        v[a] = s / La[a];
      }
      for (arma::uword a = p; a-- > 0;) {
        const double* La = L + a * k;
        v[a] /= La[a];
        for (arma::uword b = 0; b < a; ++b) v[b] -= La[b] * v[a];
      }
    };
    // z = the minimizer on the passive set, position a of as_P_ at z[a].
    auto solve = [&]() {
      const arma::uword p = as_P_.size();
      for (arma::uword a = 0; a < p; ++a) z[a] = static_cast<double>(r[as_P_[a]]) + rho;
      substitute(z);
      if (!simplex_) return;
      std::fill(as_b_.begin(), as_b_.begin() + std::ptrdiff_t(p), 1.0);
      substitute(as_b_.data());
      double sum_z = 0, sum_b = 0;
      for (arma::uword a = 0; a < p; ++a) {
        sum_z += z[a];
        sum_b += as_b_[a];
      }
      mu = (sum_z - 1.0) / sum_b;
      for (arma::uword a = 0; a < p; ++a) z[a] -= mu * as_b_[a];
    };
    auto objective = [&](auto value) {  // 1/2 x^T G x - r^T x, x_i = value(i)
      double f = 0;
      for (arma::uword i = 0; i < k; ++i) {
        const double xi = value(i);
        if (xi == 0) continue;
        const eT* gi = G.colptr(i);
        double gx = 0;
        for (arma::uword j = 0; j < k; ++j) gx += static_cast<double>(gi[j]) * value(j);
        f += xi * (0.5 * gx - static_cast<double>(r[i]));
      }
      return f;
    };

    // The tolerances of finish_tile.
    const double eps = 16.0 * static_cast<double>(k) * std::numeric_limits<eT>::epsilon();
    if (simplex_) {
      arma::uword best = 0;
      for (arma::uword i = 1; i < k; ++i)
        if (0.5 * G(i, i) - r[i] < 0.5 * G(best, best) - r[best]) best = i;
      append(best);
      x[best] = 1;
      mu = static_cast<double>(r[best]) - static_cast<double>(G(best, best));
    }
    // Each pass frees a variable or excludes one, and frees none twice
    // between drops; the cap only guards against rounding.
    for (arma::uword pass = 0; pass < 3 * k + 10; ++pass) {
      double* y = as_y_.data();
      double x_max = 0;
      for (arma::uword i = 0; i < k; ++i) y[i] = mu - static_cast<double>(r[i]);
      for (arma::uword j : as_P_) {
        x_max = std::max(x_max, x[j]);
        const eT* gj = G.colptr(j);
        for (arma::uword i = 0; i < k; ++i) y[i] += static_cast<double>(gj[i]) * x[j];
      }
      arma::uword enter = k;
      double y_min = -eps * (r_max_[c] + g_max_ * x_max);
      for (arma::uword i = 0; i < k; ++i)
        if (as_state_[i] == at_zero && y[i] < y_min) {
          y_min = y[i];
          enter = i;
        }
      if (enter == k) break;  // optimal
      if (!append(enter)) {
        as_state_[enter] = excluded;
        continue;
      }
      for (bool entering = true;; entering = false) {
        solve();
        const arma::uword p = as_P_.size();
        double alpha = 1;
        arma::uword leave = p;
        for (arma::uword a = 0; a < p; ++a) {
          const double xa = x[as_P_[a]];
          if (z[a] > 0) continue;
          const double step = xa / (xa - z[a]);
          if (leave == p || step < alpha) {
            alpha = step;
            leave = a;
          }
        }
        if (leave == p) {
          for (arma::uword a = 0; a < p; ++a) x[as_P_[a]] = z[a];
          break;
        }
        if (entering && as_P_[leave] == enter) {
          // In exact arithmetic the entering variable moves up; here
          // rounding says otherwise, and it would enter again at once.
          remove(leave);
          as_state_[enter] = excluded;
          if (simplex_) solve();  // mu back to the unchanged x's
          break;
        }
        for (arma::uword a = 0; a < p; ++a) x[as_P_[a]] += alpha * (z[a] - x[as_P_[a]]);
        x[as_P_[leave]] = 0;
        for (arma::uword a = p; a-- > 0;)
          if (!(x[as_P_[a]] > 0)) {
            x[as_P_[a]] = 0;
            remove(a);
          }
      }
    }

    bool feasible = true;
    double sum = 0;
    for (arma::uword i = 0; i < k; ++i) {
      feasible = feasible && warm[i * stride] >= 0;
      sum += static_cast<double>(warm[i * stride]);
    }
    if (simplex_) feasible = feasible && std::abs(sum - 1.0) <= eps;
    eT* out = X_.colptr(c);
    const bool keep_warm =
        feasible && objective([&](arma::uword i) { return static_cast<double>(warm[i * stride]); }) <
                        objective([&](arma::uword i) { return x[i]; });
    for (arma::uword i = 0; i < k; ++i) out[i] = keep_warm ? warm[i * stride] : static_cast<eT>(x[i]);
  }

  bool simplex_ = false;
  arma::uword words_ = 1;
  double g_max_ = 0;
  arma::Mat<eT> Rt_, X_;  // the block's rows of R and X as columns
  std::vector<double> r_max_, tol_x_, tol_y_;
  std::vector<std::uint64_t> sets_, bad_;
  std::vector<int> alpha_, beta_;
  std::vector<arma::uword> todo_, next_, sorted_, idx_, act_, fallback_;
  std::vector<std::uint64_t> live_;  // the variables whose diagonal of G is positive
  // The active-set method's x, z, duals, G_PP^-1 1 (and scratch), the rows
  // of the factor of G_PP, the passive set in order and each variable's state.
  enum : char { at_zero, in_passive, excluded };
  std::vector<double> as_x_, as_z_, as_y_, as_b_, as_L_;
  std::vector<arma::uword> as_P_;
  std::vector<char> as_state_;
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
