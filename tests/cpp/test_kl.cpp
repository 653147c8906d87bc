// The Kullback-Leibler loss: monotone multiplicative updates with l1, l2 and
// the graph term, the reported objective equal to the divergence computed
// directly, and sparse data touching only its stored entries.
#include <catch2/catch.hpp>
#include <unmix.hpp>

#include "helpers.hpp"

namespace {

double kl_divergence(const arma::mat& M, const arma::mat& W, const arma::mat& H) {
  const arma::mat P = W * H.t();
  double d = 0;
  for (arma::uword i = 0; i < M.n_elem; ++i)
    d += (M[i] > 0 ? M[i] * std::log(M[i] / P[i]) : 0.0) - M[i] + P[i];
  return d;
}

arma::mat poisson_counts(arma::uword m, arma::uword n, unsigned seed) {
  const arma::mat rate = 5.0 * test::low_rank<double>(m, n, 3, seed);
  arma::mat M(m, n);
  std::mt19937 gen(seed);
  for (arma::uword i = 0; i < M.n_elem; ++i) M[i] = std::poisson_distribution<int>(rate[i])(gen);
  return M;
}

}  // namespace

TEST_CASE("KL: monotone, exact objective, dense = sparse", "[kl]") {
  const arma::mat M = poisson_counts(40, 30, 41);
  REQUIRE(arma::accu(M == 0) > 0);
  unmix::Options o;
  o.solver = unmix::Solver::mu;
  o.loss = unmix::Loss::kl;
  o.max_iter = 60;
  o.tol = 0;
  o.W.l1 = 0.5;
  o.H.l2 = 0.2;
  const auto d = unmix::nmf(M, 3, o);
  for (std::size_t i = 1; i < d.objective.size(); ++i)
    REQUIRE(d.objective[i] <= d.objective[i - 1] + 1e-10 * d.objective.front());
  const double direct = kl_divergence(M, d.W, d.H) + 0.5 * arma::accu(d.W) +
                        0.5 * 0.2 * arma::accu(arma::square(d.H));
  REQUIRE(std::abs(direct - d.objective.back()) <= 1e-9 * d.objective.front());
  const auto s = unmix::nmf(arma::sp_mat(M), 3, o);
  REQUIRE(arma::abs(d.W - s.W).max() <= 1e-9 * arma::abs(d.W).max());
  REQUIRE(arma::abs(d.H - s.H).max() <= 1e-9 * arma::abs(d.H).max());
}

TEST_CASE("KL with the graph term stays monotone", "[kl]") {
  const arma::mat M = poisson_counts(30, 36, 43);
  std::vector<arma::uword> r, c;
  for (arma::uword i = 0; i + 1 < 36; ++i) { r.push_back(i); c.push_back(i + 1); r.push_back(i + 1); c.push_back(i); }
  arma::umat loc(2, r.size());
  loc.row(0) = arma::urowvec(r);
  loc.row(1) = arma::urowvec(c);
  unmix::Options o;
  o.solver = unmix::Solver::mu;
  o.loss = unmix::Loss::kl;
  o.max_iter = 60;
  o.tol = 0;
  o.H.graph = std::make_shared<const arma::sp_mat>(loc, arma::vec(r.size(), arma::fill::ones), 36, 36);
  o.H.smooth = 3.0;
  const auto res = unmix::nmf(M, 3, o);
  for (std::size_t i = 1; i < res.objective.size(); ++i)
    REQUIRE(res.objective[i] <= res.objective[i - 1] + 1e-10 * res.objective.front());
}

TEST_CASE("KL is refused where it is not implemented", "[kl]") {
  const arma::mat M = poisson_counts(20, 10, 44);
  unmix::Options o;
  o.loss = unmix::Loss::kl;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Catch::Matchers::Contains("solved by solver 'mu'"));
  o.solver = unmix::Solver::mu;
  o.H.simplex = true;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Catch::Matchers::Contains("only l1, l2 and graph"));
}
