#pragma once
#include <armadillo>

#include "../kernels/dense_products.hpp"
#include "residual.hpp"
#include "stats.hpp"

namespace unmix::data {

// A dense column-major matrix, referenced, never copied. The two products
// are the core's own kernels (kernels/dense_products.hpp), which stream M
// at the memory's speed where BLAS gemm does not.
template <typename eT>
class Dense {
 public:
  using elem_type = eT;
  explicit Dense(const arma::Mat<eT>& M) : M_(M) {}

  arma::uword n_rows() const { return M_.n_rows; }
  arma::uword n_cols() const { return M_.n_cols; }
  const arma::Mat<eT>& matrix() const { return M_; }

  // out = M * B   (n_rows x k)
  void times(const arma::Mat<eT>& B, arma::Mat<eT>& out, int threads) const {
    out.set_size(M_.n_rows, B.n_cols);
    kernels::times(M_.memptr(), M_.n_rows, M_.n_cols, M_.n_rows, B.memptr(), B.n_rows, B.n_cols,
                   out.memptr(), out.n_rows, threads);
  }
  // out = M^T * A (n_cols x k)
  void trans_times(const arma::Mat<eT>& A, arma::Mat<eT>& out, int threads) const {
    out.set_size(M_.n_cols, A.n_cols);
    kernels::trans_times(M_.memptr(), M_.n_rows, M_.n_cols, M_.n_rows, A.memptr(), A.n_rows,
                         A.n_cols, out.memptr(), out.n_rows, threads);
  }

  // out = (M ./ (W H^T)) H (trans: (M ./ (W H^T))^T W), a column block of
  // W H^T at a time so no m x n temporary is formed.
  KLPass kl_times(const arma::Mat<eT>& W, const arma::Mat<eT>& H, arma::Mat<eT>& out,
                  bool trans) const {
    constexpr arma::uword block = 256;
    KLPass pass;
    out.zeros(trans ? M_.n_cols : M_.n_rows, W.n_cols);
    for (arma::uword j0 = 0; j0 < M_.n_cols; j0 += block) {
      const arma::uword j1 = std::min<arma::uword>(M_.n_cols, j0 + block) - 1;
      P_ = W * H.rows(j0, j1).t();
      for (arma::uword jj = 0; jj < P_.n_cols; ++jj) {
        const eT* x = M_.colptr(j0 + jj);
        eT* p = P_.colptr(jj);
        for (arma::uword i = 0; i < P_.n_rows; ++i) p[i] = kl_weight(pass, x[i], p[i]);
      }
      if (trans)
        out.rows(j0, j1) = P_.t() * W;
      else
        out += P_ * H.rows(j0, j1);
    }
    return pass;
  }

  // ||M - W H^T||^2 (data/residual.hpp).
  double residual(const arma::Mat<eT>& W, const arma::Mat<eT>& H, int threads) const {
    return data::residual(W, H, threads, [&](arma::uword j, arma::uword first, arma::uword rows, eT* p) {
      const eT* x = M_.colptr(j) + first;
      for (arma::uword i = 0; i < rows; ++i) p[i] -= x[i];
    });
  }

  DataStats stats() const {
    DataStats s;
    const eT* p = M_.memptr();
    for (arma::uword i = 0; i < M_.n_elem; ++i) accumulate(s, p[i]);
    return s;
  }

 private:
  const arma::Mat<eT>& M_;
  mutable arma::Mat<eT> P_;
};

}  // namespace unmix::data
