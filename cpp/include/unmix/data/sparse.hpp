#pragma once
#include <armadillo>
#include <cstddef>

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
        values_(values) {}

  explicit Sparse(const arma::SpMat<eT>& M)
      : Sparse((M.sync(), M.n_rows), M.n_cols, M.col_ptrs, M.row_indices, M.values) {}

  arma::uword n_rows() const { return n_rows_; }
  arma::uword n_cols() const { return n_cols_; }
  std::size_t nnz() const { return static_cast<std::size_t>(col_ptr_[n_cols_]); }

  // out = M * B. Works on transposed copies of the thin factors so the inner
  // loop runs over contiguous rows of k values.
  void times(const arma::Mat<eT>& B, arma::Mat<eT>& out, int /*threads*/) const {
    const arma::uword k = B.n_cols;
    Bt_ = B.t();
    outT_.zeros(k, n_rows_);
    for (arma::uword j = 0; j < n_cols_; ++j) {
      const eT* b = Bt_.colptr(j);
      for (Index p = col_ptr_[j]; p < col_ptr_[j + 1]; ++p) {
        eT* o = outT_.colptr(static_cast<arma::uword>(row_idx_[p]));
        const eT v = values_[p];
        for (arma::uword c = 0; c < k; ++c) o[c] += v * b[c];
      }
    }
    out = outT_.t();
  }

  // out = M^T * A, one dot product per stored entry and column of the result.
  void trans_times(const arma::Mat<eT>& A, arma::Mat<eT>& out, int /*threads*/) const {
    const arma::uword k = A.n_cols;
    Bt_ = A.t();
    outT_.set_size(k, n_cols_);
    for (arma::uword j = 0; j < n_cols_; ++j) {
      eT* o = outT_.colptr(j);
      for (arma::uword c = 0; c < k; ++c) o[c] = eT(0);
      for (Index p = col_ptr_[j]; p < col_ptr_[j + 1]; ++p) {
        const eT* a = Bt_.colptr(static_cast<arma::uword>(row_idx_[p]));
        const eT v = values_[p];
        for (arma::uword c = 0; c < k; ++c) o[c] += v * a[c];
      }
    }
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

  DataStats stats() const {
    DataStats s;
    for (std::size_t p = 0; p < nnz(); ++p) accumulate(s, values_[p]);
    return s;
  }

 private:
  arma::uword n_rows_, n_cols_;
  const Index* col_ptr_;
  const Index* row_idx_;
  const eT* values_;
  // Transposed work copies of the thin factors (O((m + n) k), reused).
  mutable arma::Mat<eT> Bt_, Ht_, outT_;
};

}  // namespace unmix::data
