#pragma once
#include <armadillo>

#include "../data/stats.hpp"
#include "../kernels/dense_products.hpp"

namespace unmix {

// A Gram matrix whose two triangles were summed apart (and may differ in
// the last bits) made exactly symmetric: the solvers factor it.
template <typename eT>
void symmetric_from_lower(arma::Mat<eT>& G) {
  for (arma::uword j = 1; j < G.n_cols; ++j)
    for (arma::uword i = 0; i < j; ++i) G(i, j) = G(j, i);
}

// Sum of F .* R accumulated in double (float32 objectives stay meaningful).
template <typename eT>
double inner(const arma::Mat<eT>& A, const arma::Mat<eT>& B) {
  const eT* a = A.memptr();
  const eT* b = B.memptr();
  double s = 0.0;
  for (arma::uword i = 0; i < A.n_elem; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

template <typename eT>
double total(const arma::Mat<eT>& A) {
  double s = 0.0;
  for (arma::uword i = 0; i < A.n_elem; ++i) s += A[i];
  return s;
}

// The two data products of an alternating update, with the communication
// around them (DESIGN.md §2): gather the other factor's rows that the local
// block needs, multiply, reduce-scatter to the owned rows. With the serial
// communicator the gathers and scatters are no-ops and nothing is copied.
template <typename Data, typename Comm>
class Products {
 public:
  using eT = typename Data::elem_type;
  // threads: of the core's kernels, for this rank.
  Products(const Data& data, const Comm& comm, int threads)
      : data_(data), comm_(comm), threads_(threads) {}

  // M * H, the owned rows (the product for updating W).
  arma::Mat<eT>& times(const arma::Mat<eT>& H) {
    data_.times(comm_.gather_H(H, gathered_), local_W_, threads_);
    return comm_.scatter_W(local_W_, owned_W_);
  }
  // M^T * W, the owned rows (the product for updating H).
  arma::Mat<eT>& trans_times(const arma::Mat<eT>& W) {
    data_.trans_times(comm_.gather_W(W, gathered_), local_H_, threads_);
    return comm_.scatter_H(local_H_, owned_H_);
  }
  // The Kullback-Leibler products (M ./ W H^T) H (trans: its transpose times
  // W), the owned rows. The local block needs both factors' rows, so both
  // are gathered; the pass's sums stay local (the caller reduces them).
  arma::Mat<eT>& kl_times(const arma::Mat<eT>& W, const arma::Mat<eT>& H, bool trans,
                          KLPass& pass) {
    const arma::Mat<eT>& Wi = comm_.gather_W(W, gathered_W_);
    const arma::Mat<eT>& Hj = comm_.gather_H(H, gathered_);
    arma::Mat<eT>& local = trans ? local_H_ : local_W_;
    pass = data_.kl_times(Wi, Hj, local, trans);
    return trans ? comm_.scatter_H(local, owned_H_) : comm_.scatter_W(local, owned_W_);
  }
  // ||M - W H^T||^2 over this rank's block, entry by entry (the caller
  // reduces it): the objective's Gram-matrix form loses its digits near an
  // exact fit.
  double residual(const arma::Mat<eT>& W, const arma::Mat<eT>& H) {
    return data_.residual(comm_.gather_W(W, gathered_W_), comm_.gather_H(H, gathered_), threads_);
  }
  // Column sums of a factor over all ranks.
  arma::Row<eT> column_sums(const arma::Mat<eT>& F) const {
    arma::Mat<eT> s = arma::sum(F, 0);
    comm_.all_reduce(s);
    return s;
  }

  // F^T F summed over all ranks.
  void gram(const arma::Mat<eT>& F, arma::Mat<eT>& G) const {
    G.set_size(F.n_cols, F.n_cols);
    kernels::trans_times(F.memptr(), F.n_rows, F.n_cols, F.n_rows, F.memptr(), F.n_rows, F.n_cols,
                         G.memptr(), G.n_rows, threads_);
    symmetric_from_lower(G);
    comm_.all_reduce(G);
  }

  const Comm& comm() const { return comm_; }
  const Data& data() const { return data_; }
  int threads() const { return threads_; }

 private:
  const Data& data_;
  const Comm& comm_;
  int threads_;
  arma::Mat<eT> gathered_, gathered_W_, local_W_, local_H_, owned_W_, owned_H_;
};

}  // namespace unmix
