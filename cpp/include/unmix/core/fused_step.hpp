#pragma once
// The H half-step fused with the data product of the W half-step after it,
// in one pass over a dense M. For each block of columns of M:
//
//   Y   = M(:, block)^T W          the block's rows of the product R = M^T W
//   H(block, :) <- the rule on (G_W, Y)          (every rule works row by row)
//   Z  += M(:, block) H(block, :)  the next half-step's product M H, while
//                                  the block is still in cache
//
// so each iteration reads M from memory once instead of twice: the floor
// of an alternating iteration on data that does not fit in cache is two
// reads of M, and this pass does one (what bench/bench_perf.py measures).
//
// The threads take contiguous parts of the columns, a number fixed by the
// shape alone, each summing its own copy of Z (and of H^T H and <H, Y>);
// the copies are added in order, so the result does not depend on the
// number of threads.
#include <algorithm>
#include <armadillo>
#include <vector>

#include "../kernels/dense_products.hpp"
#include "../parallel/pool.hpp"
#include "factor_step.hpp"
#include "products.hpp"

namespace unmix {

// How the fused pass cuts M (m x n, k components): columns per block (the
// block stays in cache between its two products) and parts for the
// threads. parts == 0: the pass does not pay, because a block of M or a
// part's copy of Z (m x k) would not stay in cache.
struct FusedPlan {
  arma::uword block = 0, parts = 0;
};

template <typename eT>
FusedPlan fused_plan(arma::uword m, arma::uword n, arma::uword k) {
  constexpr std::size_t MiB = std::size_t(1) << 20;
  const std::size_t column = std::size_t(m) * sizeof(eT);
  if (16 * column > 4 * MiB || column * k > 4 * MiB) return {};
  FusedPlan p;
  // About 1 MiB of M per block (measured: 0.5-1.5 MiB run fastest from
  // k = 4 to 64), at least 32 blocks in all (work for the threads), and
  // enough rows for the rules (BPP groups rows by their passive sets).
  p.block = std::clamp<arma::uword>(std::min<arma::uword>(arma::uword(MiB / column), n / 32), 16,
                                    block_rows(k));
  // A few blocks per part at least; the parts' copies of Z within 1/32 of M.
  const arma::uword by_blocks = n / (4 * p.block);
  const arma::uword by_memory = arma::uword(double(n) / (32.0 * double(k)));
  p.parts = std::clamp<arma::uword>(std::min(by_blocks, by_memory), 1, 64);
  return p;
}

namespace detail {

// The pass itself: for each block of columns of M, visit(p, slot, j, F)
// with F a copy of H's rows [j, j + F.n_rows) (the visitor may change it),
// then Z_p += M(:, block) F. Z = the parts' sums in order.
template <typename eT, typename Visit>
void fused_pass(const arma::Mat<eT>& M, const arma::Mat<eT>& H, const FusedPlan& plan, int threads,
                arma::Mat<eT>& Z, Visit&& visit) {
  const arma::uword m = M.n_rows, n = M.n_cols, k = H.n_cols;
  std::vector<kernels::TimesSum<eT>> sums(plan.parts, kernels::TimesSum<eT>(m, k));
  std::vector<arma::Mat<eT>> rows(std::max(1, threads));
  const parallel::Split split{n, plan.parts};
  parallel::for_each_task(plan.parts, threads, [&](std::size_t p, int slot) {
    arma::Mat<eT>& F = rows[slot];
    for (arma::uword j = split.begin(p); j < split.end(p); j += plan.block) {
      const arma::uword cols = std::min<arma::uword>(plan.block, split.end(p) - j);
      F = H.rows(j, j + cols - 1);
      visit(p, slot, j, F);
      sums[p].add(M.colptr(j), M.n_rows, cols, F.memptr(), cols);
    }
  });
  Z.set_size(m, k);
  for (arma::uword p = 0; p < plan.parts; ++p) sums[p].add_to(Z.memptr(), m, p > 0);
}

}  // namespace detail

// Z = M H, summed exactly as fused_half_step sums it (so a run that
// starts from, or resumes at, this product is the same run).
template <typename eT>
void fused_times(const arma::Mat<eT>& M, const arma::Mat<eT>& H, const FusedPlan& plan, int threads,
                 arma::Mat<eT>& Z) {
  detail::fused_pass(M, H, plan, threads, Z, [](std::size_t, int, arma::uword, arma::Mat<eT>&) {});
}

// With extrapolation (core/extrapolation.hpp) the pass multiplies M by the
// extrapolated rows H^ = proj(H + beta (H - H_prev)), H_prev read from
// `plain` where the new plain rows are then written, and H takes H^.
template <typename eT>
struct FusedExtrapolation {
  arma::Mat<eT>& plain;
  double beta;
  arma::Mat<eT> plain_gram;  // out: the plain rows' H^T H (for a restart)
};

// One fused pass: W (m x k) the factor the H half-step sees, G_W its Gram
// matrix, own_gram H's (for min-volume). On return H is updated, Z = M H,
// gram = H^T H and cross = <H, M^T W> at the new H, cross_before the same
// at the old H, all over this process's data.
template <typename eT, template <typename> class Rule>
void fused_half_step(const arma::Mat<eT>& M, const arma::Mat<eT>& W, const arma::Mat<eT>& G_W,
                     arma::Mat<eT>& H, const arma::Mat<eT>& own_gram, FactorStep<eT, Rule>& step,
                     const FusedPlan& plan, int threads, arma::Mat<eT>& Z, arma::Mat<eT>& gram,
                     double& cross, double& cross_before, FusedExtrapolation<eT>* ex = nullptr) {
  const arma::uword m = M.n_rows, k = W.n_cols;
  step.begin(G_W, own_gram);
  const kernels::TransOperand<eT> W_ready(W.memptr(), W.n_rows, m, k);
  std::vector<eT> grams(std::size_t(plan.parts) * k * k), plain_grams(ex ? grams.size() : 0);
  std::vector<double> crosses(plan.parts, 0.0), before(plan.parts, 0.0);
  std::vector<arma::Mat<eT>> Ys(std::max(1, threads)), block_grams(std::max(1, threads)),
      previous(std::max(1, threads));
  auto add_gram = [&](const arma::Mat<eT>& F, arma::Mat<eT>& g, eT* sum) {
    kernels::trans_times(F.memptr(), F.n_rows, k, F.n_rows, F.memptr(), F.n_rows, k, g.memptr(), k, 1);
    for (std::size_t e = 0; e < std::size_t(k) * k; ++e) sum[e] += g[e];
  };
  detail::fused_pass(M, H, plan, threads, Z, [&](std::size_t p, int slot, arma::uword j, arma::Mat<eT>& F) {
    arma::Mat<eT>& Y = Ys[slot];
    arma::Mat<eT>& g = block_grams[slot];
    const arma::uword last = j + F.n_rows - 1;
    Y.set_size(F.n_rows, k);
    g.set_size(k, k);
    W_ready.apply(M.colptr(j), m, 0, m, 0, F.n_rows, Y.memptr(), F.n_rows, false);
    before[p] += inner(F, Y);
    step.update_rows(j, Y, F, slot);
    crosses[p] += inner(F, Y);
    if (ex) {
      arma::Mat<eT>& P = previous[slot];
      P = ex->plain.rows(j, last);
      ex->plain.rows(j, last) = F;
      add_gram(F, g, &plain_grams[p * k * k]);
      F += eT(ex->beta) * (F - P);
      step.project_rows(j, F);
    }
    H.rows(j, last) = F;  // rows of this block alone
    add_gram(F, g, &grams[p * k * k]);
  });
  step.end(H);
  auto add_up = [&](const std::vector<eT>& parts, arma::Mat<eT>& out) {
    out.zeros(k, k);
    for (arma::uword p = 0; p < plan.parts; ++p) out += arma::Mat<eT>(const_cast<eT*>(&parts[p * k * k]), k, k, false, true);
    symmetric_from_lower(out);
  };
  add_up(grams, gram);
  if (ex) add_up(plain_grams, ex->plain_gram);
  cross = cross_before = 0.0;
  for (arma::uword p = 0; p < plan.parts; ++p) {
    cross += crosses[p];
    cross_before += before[p];
  }
}

}  // namespace unmix
