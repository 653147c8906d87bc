// Bad input throws std::invalid_argument naming the parameter; nothing prints.
#include <catch2/catch.hpp>
#include <unmix.hpp>

#include "helpers.hpp"

using Catch::Matchers::Contains;

TEST_CASE("bad options and data name what is wrong", "[errors]") {
  arma::mat M(20, 10, arma::fill::randu);
  unmix::Options o;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 0, o), Contains("k must be >= 1"));
  REQUIRE_THROWS_WITH(unmix::nmf(M, 11, o), Contains("k must be <= min(m, n) = 10"));
  o.init = unmix::Init::random;
  REQUIRE_NOTHROW(unmix::nmf(M, 11, o));
  o = {};
  o.max_iter = 0;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Contains("max_iter must be >= 1, got 0"));
  o = {};
  o.tol = -1;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Contains("tol must be finite and >= 0"));
  o = {};
  o.H.l1 = -0.5;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Contains("H.l1 must be finite and >= 0, got -0.5"));
  o = {};
  o.W.l2 = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_AS(unmix::nmf(M, 2, o), std::invalid_argument);
  o = {};
  M(3, 4) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Contains("M must be finite") && Contains("NaN"));
  M(3, 4) = -2;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Contains("non-negative") && Contains("-2"));
  REQUIRE_THROWS_WITH(unmix::nmf(arma::mat(0, 5), 1, o), Contains("non-empty"));
  REQUIRE_THROWS_WITH(unmix::parse_solver("als"), Contains("solver must be one of 'bpp', 'hals', 'mu', 'admm', got 'als'"));
  REQUIRE_THROWS_WITH(unmix::parse_init("svd"), Contains("init must be one of"));
}

TEST_CASE("bad starting factors name the factor and the expected shape", "[errors]") {
  const arma::mat M(20, 10, arma::fill::randu);
  const arma::mat W(20, 3, arma::fill::randu), H(9, 3, arma::fill::randu);
  REQUIRE_THROWS_WITH(unmix::nmf(M, W, H), Contains("H.shape must be equal to (10, 3), got (9, 3)"));
  arma::mat Hneg(10, 3, arma::fill::randu);
  Hneg(0, 0) = -1;
  REQUIRE_THROWS_WITH(unmix::nmf(M, W, Hneg), Contains("H must be non-negative"));
  unmix::Options o;
  o.W.fixed = o.H.fixed = true;
  REQUIRE_THROWS_WITH(unmix::nmf(M, W, arma::mat(10, 3, arma::fill::randu), o), Contains("not both"));
}

// Beyond these, squares and products under- or overflow: the fit came back
// with W = H = 0 and a reported error of 0 (1e-200 in float64, 1e-38 in
// float32), or an error of 0.49 for a true 0.45 (1e18 in float32).
TEST_CASE("data too small or too large to compute with is refused by name, with the fix", "[errors]") {
  const arma::mat M(20, 10, arma::fill::randu);
  unmix::Options o;
  REQUIRE_THROWS_WITH(unmix::nmf(arma::mat(M * 1e-200), 2, o),
                      Contains("the largest value of M must be between 4.9e-150 and 2e+149 in float64, got") &&
                          Contains("multiply M by a power of ten such as 1e+200"));
  REQUIRE_THROWS_WITH(unmix::nmf(arma::mat(M * 1e160), 2, o), Contains("such as 1e-160"));
  const arma::fmat F = arma::conv_to<arma::fmat>::from(M);
  REQUIRE_THROWS_WITH(unmix::nmf(arma::fmat(F * 1e-20f), 2, o),
                      Contains("between 3.6e-15 and 2.8e+14 in float32") && Contains("or use float64"));
  REQUIRE_THROWS_WITH(unmix::nmf(arma::fmat(F * 1e18f), 2, o), Contains("such as 1e-18"));
  REQUIRE_NOTHROW(unmix::nmf(arma::mat(M * 1e-140), 2, o));
}
