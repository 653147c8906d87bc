#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

namespace unmix {

// What one pass over the data tells: enough to validate it, to scale a random
// initialization and to evaluate the objective without forming W H^T.
struct DataStats {
  double sum = 0.0;
  double sq_norm = 0.0;  // ||M||_F^2
  double min = 0.0;
  double max_abs = 0.0;  // the largest magnitude
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
  if (std::abs(x) > s.max_abs) s.max_abs = std::abs(x);
  s.sum += x;
  s.sq_norm += x * x;
}

// The largest magnitude of eT data that a fit computes with (the smallest
// is its inverse): the objective sums the squares of the data, and the
// Gram matrices, products and initializations of the factors (each about
// the data's square root) reach them too, so the square of the largest
// value must stay a normal number of eT with room for sums over 2^32
// entries. Beyond, the sums under- or overflow and the fit was silently
// wrong (measured: at 1e-200 in float64 W = H = 0 with a reported error of
// 0; in float32 from 1e18 and 1e-25 on). Power-of-two bounds: 2^48
// (2.8e14) for float32, 2^496 (2e149) for float64.
template <typename eT>
double data_limit() {
  return std::ldexp(1.0, (std::numeric_limits<eT>::max_exponent - 32) / 2);
}

// What one pass of the Kullback-Leibler products also yields about the
// current W H^T: sum of M log(M / WH^T) over the stored entries, and
// <M, W H^T> (for the Frobenius relative error reported alongside).
struct KLPass {
  double log_term = 0.0;
  double cross = 0.0;
};

// Folds the entry (x, p = (W H^T)_ij) into a KL pass and returns x / p, the
// weight of this entry in the multiplicative update (0 where x = 0).
template <typename eT>
inline eT kl_weight(KLPass& pass, eT x, eT p) {
  if (!(x > 0)) return eT(0);
  const double pd = std::max(double(p), std::numeric_limits<double>::min());
  // log x - log p, not log(x / p): x / p underflows for subnormal x.
  pass.log_term += double(x) * (std::log(double(x)) - std::log(pd));
  pass.cross += double(x) * double(p);
  return static_cast<eT>(double(x) / pd);
}

}  // namespace unmix
