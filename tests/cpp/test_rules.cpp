// Each update rule must not increase the half-step objective
// 1/2 tr(F G F^T) - <F, R>, and BPP must reach its minimum.
#include <catch2/catch.hpp>
#include <unmix.hpp>

#include "helpers.hpp"

namespace {

template <typename eT>
double half_step_objective(const arma::Mat<eT>& G, const arma::Mat<eT>& R, const arma::Mat<eT>& F) {
  const arma::mat g = arma::conv_to<arma::mat>::from(G), r = arma::conv_to<arma::mat>::from(R),
                  f = arma::conv_to<arma::mat>::from(F);
  return 0.5 * arma::trace(f * g * f.t()) - arma::accu(f % r);
}

template <typename eT, typename Rule>
void check_monotone() {
  arma::arma_rng::set_seed(3);
  const arma::uword k = 6, rows = 80;
  const arma::Mat<eT> C(40, k, arma::fill::randu);
  const arma::Mat<eT> G = C.t() * C;
  arma::Mat<eT> R = arma::Mat<eT>(rows, k, arma::fill::randn) + eT(0.5);
  arma::Mat<eT> F(rows, k, arma::fill::randu);
  Rule rule;
  double prev = half_step_objective(G, R, F);
  for (int it = 0; it < 30; ++it) {
    rule.update(G, R, F);
    const double f = half_step_objective(G, R, F);
    REQUIRE(F.min() >= eT(0));
    REQUIRE(f <= prev + 1e3 * std::numeric_limits<eT>::epsilon() * std::abs(prev));
    prev = f;
  }
}

}  // namespace

TEMPLATE_TEST_CASE("update rules decrease the half-step objective", "[rules]", float, double) {
  check_monotone<TestType, unmix::rules::MU<TestType>>();
  check_monotone<TestType, unmix::rules::HALS<TestType>>();
  check_monotone<TestType, unmix::rules::BPP<TestType>>();
}

TEST_CASE("BPP reaches the minimum that HALS approaches", "[rules]") {
  arma::arma_rng::set_seed(5);
  const arma::mat C(30, 5, arma::fill::randu);
  const arma::mat G = C.t() * C;
  const arma::mat R(60, 5, arma::fill::randn);
  arma::mat Fb(60, 5, arma::fill::randu), Fh = Fb;
  unmix::rules::BPP<double> bpp;
  unmix::rules::HALS<double> hals;
  bpp.update(G, R, Fb);
  for (int i = 0; i < 2000; ++i) hals.update(G, R, Fh);
  REQUIRE(arma::abs(Fb - Fh).max() < 1e-8);
}
