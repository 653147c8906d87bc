#pragma once
#include <armadillo>

#include "../core/options.hpp"
#include "nndsvd.hpp"
#include "random.hpp"
#include "rsvd.hpp"

namespace unmix::init {

// Fills this rank's rows of W (of m) and H (of n) for the chosen method.
// Every method is defined in the natural orientation and on global row
// indices, so the result does not depend on the orientation of M or on the
// process grid.
template <typename Products>
void initialize(Products& products, const Options& opt, arma::uword m, arma::uword n,
                arma::uword k, double mean, arma::Mat<typename Products::eT>& W,
                arma::Mat<typename Products::eT>& H) {
  const auto& comm = products.comm();
  const auto w_rows = comm.W_rows(m);
  const auto h_rows = comm.H_rows(n);
  // Natural rows are the rows of M unless the caller sees M transposed.
  const auto row_part = opt.transposed ? h_rows : w_rows;
  const auto col_part = opt.transposed ? w_rows : h_rows;
  auto& row_factor = opt.transposed ? H : W;
  auto& col_factor = opt.transposed ? W : H;

  if (opt.init == Init::random) {
    const double scale = random_scale(mean, k);
    row_factor.set_size(row_part.count, k);
    col_factor.set_size(col_part.count, k);
    fill_uniform(row_factor, CounterRng(opt.seed, Stream::rows_factor), row_part.first, scale);
    fill_uniform(col_factor, CounterRng(opt.seed, Stream::cols_factor), col_part.first, scale);
    return;
  }
  // As scikit-learn: more power iterations when k is small against the shape.
  const arma::uword n_power_iter = (10 * k < std::min(m, n)) ? 7 : 4;
  const NaturalOperator<Products> N{products, opt.transposed};
  const auto svd = randomized_svd(N, k, n_power_iter, opt.seed, col_part.first, col_part.count,
                                  opt.transposed ? n : m, opt.transposed ? m : n);
  nndsvd(svd, opt.init, mean, opt.seed, comm, row_part.first, col_part.first, row_factor,
         col_factor);
}

}  // namespace unmix::init
