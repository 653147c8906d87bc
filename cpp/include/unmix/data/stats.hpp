#pragma once
#include <cstddef>

namespace unmix {

// What one pass over the data tells: enough to validate it, to scale a random
// initialization and to evaluate the objective without forming W H^T.
struct DataStats {
  double sum = 0.0;
  double sq_norm = 0.0;  // ||M||_F^2
  double min = 0.0;
  std::size_t n_nonfinite = 0;
  std::size_t n_negative = 0;
};

// Folds one stored value into the statistics; sums are kept in double so that
// float32 data does not lose the objective to rounding.
template <typename eT>
inline void accumulate(DataStats& s, eT v) {
  const double x = static_cast<double>(v);
  if (!(x - x == 0.0)) {  // NaN or +-inf
    ++s.n_nonfinite;
    return;
  }
  if (x < 0) ++s.n_negative;
  if (x < s.min) s.min = x;
  s.sum += x;
  s.sq_norm += x * x;
}

}  // namespace unmix
