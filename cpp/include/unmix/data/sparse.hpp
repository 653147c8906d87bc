#pragma once
#include <algorithm>
#include <armadillo>
#include <cstddef>

#include "../parallel/pool.hpp"

#include "residual.hpp"
#include "stats.hpp"

namespace unmix::data {

// A compressed-sparse-column matrix held by pointers, so that scipy's arrays
// (int32 or int64 indices) and arma::SpMat (uword) are used without a copy.
// The products touch only the stored entries.
template <typename eT, typename Index = arma::uword>
class Sparse {
 public:
  using elem_type = eT;

  Sparse(arma::uword n_rows, arma::uword n_cols, const Index* col_ptr,
         const Index* row_idx, const eT* values)
      : n_rows_(n_rows), n_cols_(n_cols), col_ptr_(col_ptr), row_idx_(row_idx),
        values_(values) {
    for (arma::uword j = 0; j < n_cols_ && sorted_; ++j)
      sorted_ = std::is_sorted(row_idx_ + col_ptr_[j], row_idx_ + col_ptr_[j + 1]);
  }

  explicit Sparse(const arma::SpMat<eT>& M)
      : Sparse((M.sync(), M.n_rows), M.n_cols, M.col_ptrs, M.row_indices, M.values) {}

  arma::uword n_rows() const { return n_rows_; }
  arma::uword n_cols() const { return n_cols_; }
  std::size_t nnz() const { return static_cast<std::size_t>(col_ptr_[n_cols_]); }

  // out = M * B. Works on transposed copies of the thin factors so the inner
  // loop runs over contiguous rows of k values. The threads take ranges of
  // rows of out, each finding its range in every column (the row indices
  // of a column are sorted): no thread writes another's rows, nothing is
  // copied, and every entry of out is summed in the same order whatever
  // the number of threads.
  void times(const arma::Mat<eT>& B, arma::Mat<eT>& out, int threads) const {
    const arma::uword k = B.n_cols;
    Bt_ = B.t();
    outT_.zeros(k, n_rows_);
    threads = sorted_ ? useful_threads(threads) : 1;
    const std::size_t tasks = threads > 1 ? std::size_t(4 * threads) : 1;
    const parallel::Split split{n_rows_, tasks};
    parallel::for_each_task(tasks, threads, [&](std::size_t t) {
      const Index r0 = Index(split.begin(t)), r1 = Index(split.end(t));
      for (arma::uword j = 0; j < n_cols_; ++j) {
        const Index* first = row_idx_ + col_ptr_[j];
        const Index* last = row_idx_ + col_ptr_[j + 1];
        if (tasks > 1) {
          first = std::lower_bound(first, last, r0);
          last = std::lower_bound(first, last, r1);
        }
        const eT* b = Bt_.colptr(j);
        for (const Index* p = first; p < last; ++p) {
          eT* o = outT_.colptr(static_cast<arma::uword>(*p));
          const eT v = values_[p - row_idx_];
          for (arma::uword c = 0; c < k; ++c) o[c] += v * b[c];
        }
      }
    });
    out = outT_.t();
  }

  // out = M^T * A, one dot product per stored entry and column of the
  // result; the threads take ranges of columns.
  void trans_times(const arma::Mat<eT>& A, arma::Mat<eT>& out, int threads) const {
    const arma::uword k = A.n_cols;
    Bt_ = A.t();
    outT_.set_size(k, n_cols_);
    threads = useful_threads(threads);
    const std::size_t tasks = threads > 1 ? std::size_t(4 * threads) : 1;
    const parallel::Split split{n_cols_, tasks};
    parallel::for_each_task(tasks, threads, [&](std::size_t t) {
      for (arma::uword j = split.begin(t); j < split.end(t); ++j) {
        eT* o = outT_.colptr(j);
        for (arma::uword c = 0; c < k; ++c) o[c] = eT(0);
        for (Index p = col_ptr_[j]; p < col_ptr_[j + 1]; ++p) {
          const eT* a = Bt_.colptr(static_cast<arma::uword>(row_idx_[p]));
          const eT v = values_[p];
          for (arma::uword c = 0; c < k; ++c) o[c] += v * a[c];
        }
      }
    });
    out = outT_.t();
  }

  // out = (M ./ (W H^T)) H (trans: (M ./ (W H^T))^T W), touching only the
  // stored entries: one dot product of k for (W H^T)_ij at each.
  KLPass kl_times(const arma::Mat<eT>& W, const arma::Mat<eT>& H, arma::Mat<eT>& out,
                  bool trans) const {
    const arma::uword k = W.n_cols;
    KLPass pass;
    Bt_ = W.t();
    Ht_ = H.t();
    outT_.zeros(k, trans ? n_cols_ : n_rows_);
    for (arma::uword j = 0; j < n_cols_; ++j) {
      const eT* h = Ht_.colptr(j);
      for (Index p = col_ptr_[j]; p < col_ptr_[j + 1]; ++p) {
        const arma::uword i = static_cast<arma::uword>(row_idx_[p]);
        const eT* w = Bt_.colptr(i);
        eT wh = 0;
        for (arma::uword c = 0; c < k; ++c) wh += w[c] * h[c];
        const eT q = kl_weight(pass, values_[p], wh);
        eT* o = outT_.colptr(trans ? j : i);
        const eT* src = trans ? w : h;
        for (arma::uword c = 0; c < k; ++c) o[c] += q * src[c];
      }
    }
    out = outT_.t();
    return pass;
  }

  // ||M - W H^T||^2 over every entry, stored or not (data/residual.hpp):
  // summing only the stored ones and adding ||W H^T||^2 would cancel as
  // the Gram form does. Unsorted columns are walked whole.
  double residual(const arma::Mat<eT>& W, const arma::Mat<eT>& H, int threads) const {
    const auto subtract = [&](arma::uword j, arma::uword first, arma::uword rows, eT* p) {
      const Index* begin = row_idx_ + col_ptr_[j];
      const Index* end = row_idx_ + col_ptr_[j + 1];
      if (sorted_) {
        begin = std::lower_bound(begin, end, Index(first));
        end = std::lower_bound(begin, end, Index(first + rows));
      }
      for (const Index* q = begin; q < end; ++q) p[arma::uword(*q) - first] -= values_[q - row_idx_];
    };
    return data::residual(W, H, threads, subtract, sorted_ ? 256 : n_rows_);
  }

  DataStats stats() const {
    DataStats s;
    for (std::size_t p = 0; p < nnz(); ++p) accumulate(s, values_[p]);
    return s;
  }

 private:
  // Threads worth starting: about 2^16 stored entries each.
  int useful_threads(int threads) const {
    return int(std::clamp<std::size_t>(nnz() >> 16, 1, std::size_t(std::max(1, threads))));
  }

  arma::uword n_rows_, n_cols_;
  const Index* col_ptr_;
  const Index* row_idx_;
  const eT* values_;
  bool sorted_ = true;  // row indices ascending in every column (canonical CSC)
  // Transposed work copies of the thin factors (O((m + n) k), reused).
  mutable arma::Mat<eT> Bt_, Ht_, outT_;
};

}  // namespace unmix::data
