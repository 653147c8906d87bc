#pragma once
#include <algorithm>
#include <armadillo>
#include <vector>

#include "../kernels/simd.hpp"
#include "../parallel/pool.hpp"

namespace unmix::data {

namespace detail {

// The rows of one block: p = (W H^T)(rows, j) for each column j in turn
// (the block's rows of W stay in cache), subtract(j, first, rows, p) takes
// M's entries away, and the squares go to eight sums (one would be a chain
// of dependent additions, several times slower).
template <typename eT, typename Subtract>
UNMIX_ALWAYS_INLINE double residual_rows(const arma::Mat<eT>& W, const arma::Mat<eT>& Ht, arma::uword first,
                                         arma::uword rows, eT* p, const Subtract& subtract) {
  const arma::uword k = W.n_cols;
  double sums[8] = {};
  for (arma::uword j = 0; j < Ht.n_cols; ++j) {
    const eT* h = Ht.colptr(j);
    std::fill(p, p + rows, eT(0));
    for (arma::uword c = 0; c < k; ++c) {
      const eT* w = W.colptr(c) + first;
      const eT hc = h[c];
      for (arma::uword i = 0; i < rows; ++i) p[i] += w[i] * hc;
    }
    subtract(j, first, rows, p);
    arma::uword i = 0;
    for (; i + 8 <= rows; i += 8)
      for (int u = 0; u < 8; ++u) sums[u] += static_cast<double>(p[i + u]) * static_cast<double>(p[i + u]);
    for (; i < rows; ++i) sums[0] += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  }
  double total = 0;
  for (double s : sums) total += s;
  return total;
}

template <typename eT, typename Subtract>
double residual_baseline(const arma::Mat<eT>& W, const arma::Mat<eT>& Ht, arma::uword first, arma::uword rows,
                         eT* p, const Subtract& subtract) {
  return residual_rows(W, Ht, first, rows, p, subtract);
}
#if defined(UNMIX_X86_DISPATCH)
template <typename eT, typename Subtract>
UNMIX_TARGET_AVX2 double residual_avx2(const arma::Mat<eT>& W, const arma::Mat<eT>& Ht, arma::uword first,
                                       arma::uword rows, eT* p, const Subtract& subtract) {
  return residual_rows(W, Ht, first, rows, p, subtract);
}
template <typename eT, typename Subtract>
UNMIX_TARGET_AVX512 double residual_avx512(const arma::Mat<eT>& W, const arma::Mat<eT>& Ht, arma::uword first,
                                           arma::uword rows, eT* p, const Subtract& subtract) {
  return residual_rows(W, Ht, first, rows, p, subtract);
}
#endif

}  // namespace detail

// ||M - W H^T||^2 for a block M of the data (m x n; W m x k, H n x k),
// summed in double without forming W H^T: blocks of `block` rows (256
// unless the data can only be walked by whole columns), each on a thread,
// their sums added in order (the same for any number of threads). For each
// block of rows and column j, subtract(j, first, rows, p) must take
// M(first .. first + rows - 1, j) from p.
template <typename eT, typename Subtract>
double residual(const arma::Mat<eT>& W, const arma::Mat<eT>& H, int threads, const Subtract& subtract,
                arma::uword block = 256) {
  const arma::uword m = W.n_rows;
  if (m == 0 || H.n_rows == 0) return 0.0;
  block = std::min(block, m);
  const arma::Mat<eT> Ht = H.t();
  const std::size_t tasks = (m + block - 1) / block;
  std::vector<double> sums(tasks);
  std::vector<std::vector<eT>> buffers(std::size_t(std::max(1, threads)), std::vector<eT>(block));
  parallel::for_each_task(tasks, threads, [&](std::size_t t, int slot) {
    const arma::uword first = t * block, rows = std::min(block, m - first);
    eT* p = buffers[std::size_t(slot)].data();
#if defined(UNMIX_X86_DISPATCH)
    switch (kernels::isa()) {
      case kernels::Isa::avx512: sums[t] = detail::residual_avx512(W, Ht, first, rows, p, subtract); return;
      case kernels::Isa::avx2: sums[t] = detail::residual_avx2(W, Ht, first, rows, p, subtract); return;
      default: break;
    }
#endif
    sums[t] = detail::residual_baseline(W, Ht, first, rows, p, subtract);
  });
  double total = 0;
  for (double s : sums) total += s;
  return total;
}

}  // namespace unmix::data
