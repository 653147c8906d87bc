#pragma once
#include <armadillo>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "options.hpp"

namespace unmix::detail {

// A factor that stopped being finite ends the run the iteration it happens,
// with the likely cause: the Gram matrix of the factor is all-reduced right
// after its update, so every rank sees the same NaN or infinity and throws.
template <typename eT>
[[noreturn]] void throw_breakdown(const std::string& factor, const FactorOptions& f, int iteration,
                                  double data_rms) {
  std::ostringstream m;
  m << "unmix: factor " << factor << " became NaN or infinite at iteration " << iteration << "; ";
  const double largest = std::numeric_limits<eT>::max();
  if (data_rms * data_rms > std::sqrt(largest) / 1e3)
    m << "the data's scale (root mean square " << data_rms << ") is too large for "
      << (sizeof(eT) == 4 ? "float32" : "float64") << " products: rescale the data"
      << (sizeof(eT) == 4 ? " or use float64" : "");
  else if (f.l1 > 0 || f.l2 > 0 || f.smooth > 0 || f.minvol > 0)
    m << "a regularization weight of " << factor << " (l1 " << f.l1 << ", l2 " << f.l2 << ", smooth "
      << f.smooth << ", minvol " << f.minvol << ") is likely too large for this data scale "
      << "(root mean square " << data_rms << ")";
  else
    m << "the update is unstable for this data (root mean square " << data_rms
      << "); try solver 'bpp' or another init";
  throw std::runtime_error(m.str());
}

}  // namespace unmix::detail
