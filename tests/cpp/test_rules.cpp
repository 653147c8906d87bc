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
    rule.update(G, R, F, unmix::Feasible<eT>::nonnegative(k));
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
  const auto nonneg = unmix::Feasible<double>::nonnegative(5);
  bpp.update(G, R, Fb, nonneg);
  for (int i = 0; i < 2000; ++i) hals.update(G, R, Fh, nonneg);
  REQUIRE(arma::abs(Fb - Fh).max() < 1e-8);
}

namespace {

// KKT of min 1/2 x^T G x - r^T x on the simplex: x >= 0, sum x = 1 and
// y = G x - r + mu >= 0 with x .* y = 0 for some mu.
void require_simplex_kkt(const arma::mat& G, const arma::mat& R, const arma::mat& F) {
  for (arma::uword i = 0; i < F.n_rows; ++i) {
    const arma::vec x = F.row(i).t();
    REQUIRE(std::abs(arma::accu(x) - 1.0) <= 1e-12);
    REQUIRE(x.min() >= 0.0);
    const arma::vec g = G * x - R.row(i).t();
    const arma::uvec pos = arma::find(x > 1e-12);
    const double mu = -arma::mean(g.elem(pos));
    REQUIRE(arma::abs(g.elem(pos) + mu).max() <= 1e-8);
    REQUIRE((g + mu).min() >= -1e-8);
  }
}

}  // namespace

TEST_CASE("BPP on the simplex is the exact constrained minimizer; MU approaches it", "[rules][simplex]") {
  arma::arma_rng::set_seed(17);
  const arma::mat C(30, 6, arma::fill::randu);
  const arma::mat G = C.t() * C;
  const arma::mat R = 5.0 * arma::mat(200, 6, arma::fill::randn);
  unmix::Feasible<double> simplex = unmix::Feasible<double>::nonnegative(6);
  simplex.simplex = true;
  arma::mat Fb(200, 6, arma::fill::randu);
  simplex.project(Fb);
  arma::mat Fm = Fb;
  unmix::rules::BPP<double> bpp;
  bpp.update(G, R, Fb, simplex);
  require_simplex_kkt(G, R, Fb);
  unmix::rules::MU<double> mu;
  for (int i = 0; i < 3000; ++i) {
    mu.update(G, R, Fm, simplex);
    REQUIRE(arma::abs(arma::sum(Fm, 1) - 1.0).max() <= 1e-12);
  }
  REQUIRE(arma::abs(Fm - Fb).max() < 1e-3);
}

TEMPLATE_TEST_CASE("bounded rules stay within their bounds and decrease the objective", "[rules][bounds]",
                   float, double) {
  using eT = TestType;
  arma::arma_rng::set_seed(19);
  const arma::Mat<eT> C(30, 4, arma::fill::randu);
  const arma::Mat<eT> G = C.t() * C;
  const arma::Mat<eT> R = arma::Mat<eT>(80, 4, arma::fill::randu) * eT(8);
  unmix::FactorOptions o;
  o.lower = 0.1;
  o.upper_cols = {0.5, 1.0, 2.0, 0.3};
  const auto box = unmix::Feasible<eT>::from(o, 4);
  unmix::rules::HALS<eT> hals;
  unmix::rules::MU<eT> mu;
  for (int which = 0; which < 2; ++which) {
    arma::Mat<eT> F(80, 4, arma::fill::randu);
    box.project(F);
    double prev = half_step_objective(G, R, F);
    for (int it = 0; it < 20; ++it) {
      if (which == 0) hals.update(G, R, F, box); else mu.update(G, R, F, box);
      for (arma::uword j = 0; j < 4; ++j) {
        REQUIRE(F.col(j).min() >= box.lo(j));
        REQUIRE(F.col(j).max() <= box.hi(j));
      }
      const double f = half_step_objective(G, R, F);
      REQUIRE(f <= prev + 1e-5 * std::abs(prev));
      prev = f;
    }
  }
}
