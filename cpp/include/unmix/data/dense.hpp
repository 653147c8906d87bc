#pragma once
#include <armadillo>

#include "stats.hpp"

namespace unmix::data {

// A dense column-major matrix, referenced, never copied. The two products are
// single BLAS calls; the transposed one passes the transpose flag to gemm.
template <typename eT>
class Dense {
 public:
  using elem_type = eT;
  explicit Dense(const arma::Mat<eT>& M) : M_(M) {}

  arma::uword n_rows() const { return M_.n_rows; }
  arma::uword n_cols() const { return M_.n_cols; }

  // out = M * B   (n_rows x k)
  void times(const arma::Mat<eT>& B, arma::Mat<eT>& out) const { out = M_ * B; }
  // out = M^T * A (n_cols x k)
  void trans_times(const arma::Mat<eT>& A, arma::Mat<eT>& out) const { out = M_.t() * A; }

  DataStats stats() const {
    DataStats s;
    const eT* p = M_.memptr();
    for (arma::uword i = 0; i < M_.n_elem; ++i) accumulate(s, p[i]);
    return s;
  }

 private:
  const arma::Mat<eT>& M_;
};

}  // namespace unmix::data
