#pragma once
#include <armadillo>
#include <cmath>

#include "counter_rng.hpp"

namespace unmix::init {

// Streams of the counter generator, named in the natural orientation (rows of
// the caller's matrix = samples) so that M and its transpose start alike.
enum Stream : std::uint64_t { rows_factor = 0, cols_factor = 1, sketch = 2, fill = 3, revive = 4 };

// Uniform [0, scale) entries for global rows first .. first + F.n_rows.
template <typename eT>
void fill_uniform(arma::Mat<eT>& F, const CounterRng& rng, arma::uword first, double scale) {
  for (arma::uword j = 0; j < F.n_cols; ++j)
    for (arma::uword i = 0; i < F.n_rows; ++i)
      F(i, j) = static_cast<eT>(scale * rng.uniform(first + i, j));
}

// Scale so that the product W H^T has the data's mean entry on average:
// E[(W H^T)_ij] = k (s / 2)^2 = mean.
inline double random_scale(double mean, arma::uword k) {
  return 2.0 * std::sqrt(std::max(mean, 0.0) / static_cast<double>(k));
}

}  // namespace unmix::init
