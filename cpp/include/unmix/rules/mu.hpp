#pragma once
#include <armadillo>
#include <limits>

namespace unmix::rules {

// Multiplicative update (Lee & Seung). Splitting R = R+ - R- gives the
// majorization-minimization step  F <- F .* R+ ./ (F G + R-),  which is
// monotone for any R (R- carries the l1 weight, as in the usual
// "lambda in the denominator" form) and keeps F >= 0 without clipping.
template <typename eT>
class MU {
 public:
  static constexpr const char* name = "mu";

  void update(const arma::Mat<eT>& G, const arma::Mat<eT>& R, arma::Mat<eT>& F) {
    FG_ = F * G;
    const eT tiny = std::numeric_limits<eT>::min();
    eT* f = F.memptr();
    const eT* r = R.memptr();
    const eT* d = FG_.memptr();
    for (arma::uword i = 0; i < F.n_elem; ++i) {
      const eT num = r[i] > 0 ? r[i] : eT(0);
      const eT den = d[i] + (r[i] < 0 ? -r[i] : eT(0));
      f[i] = den > tiny ? f[i] * (num / den) : eT(0);
    }
  }

 private:
  arma::Mat<eT> FG_;
};

}  // namespace unmix::rules
