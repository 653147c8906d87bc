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

TEST_CASE("KL with bounds, sum-to-one and fixed columns: exact and monotone", "[kl][constraints]") {
  arma::mat M = poisson_counts(40, 30, 45);
  M.row(7).zeros();  // a dark pixel: nothing in the data pulls on its row
  auto monotone = [](const unmix::Result<double>& r) {
    for (std::size_t i = 1; i < r.objective.size(); ++i)
      REQUIRE(r.objective[i] <= r.objective[i - 1] + 1e-10 * r.objective.front());
  };
  unmix::Options o;
  o.solver = unmix::Solver::mu;
  o.loss = unmix::Loss::kl;
  o.max_iter = 80;
  o.tol = 0;
  SECTION("sum-to-one rows, with l1 and the bounds too") {
    o.W.simplex = true;
    o.W.l1 = 0.3;
    for (int bounded = 0; bounded < 2; ++bounded) {
      if (bounded) o.W.upper_cols = {0.7, 0.9, 0.5};
      const auto r = unmix::nmf(M, 3, o);
      monotone(r);
      REQUIRE(r.W.min() >= 0.0);
      REQUIRE(arma::abs(arma::sum(r.W, 1) - 1.0).max() <= 1e-9);
      if (bounded) REQUIRE(arma::all(arma::max(r.W, 0).t() <= o.W.upper_cols + 1e-15));
      // The dark pixel goes to the component with the smallest spectrum
      // total: the exact minimizer of its row's divergence.
      const arma::rowvec total = arma::sum(r.H, 0);
      if (!bounded) REQUIRE(r.W(7, total.index_min()) == Approx(1.0).margin(1e-12));
    }
  }
  SECTION("bounds on both factors") {
    o.W.lower = 0.05;
    o.W.upper = 2.0;
    o.H.upper_cols = {3.0, 4.0, 5.0};
    const auto r = unmix::nmf(M, 3, o);
    monotone(r);
    REQUIRE(r.W.min() >= 0.05);
    REQUIRE(r.W.max() <= 2.0);
    REQUIRE(arma::all(arma::max(r.H, 0).t() <= o.H.upper_cols));
  }
  SECTION("known endmembers stay as given") {
    const arma::mat known = arma::abs(arma::mat(30, 1, arma::fill::randu)) + 0.1;
    o.H.fixed_cols = {1};
    o.H.fixed_values = known;
    o.H.smooth = 0;
    const auto r = unmix::nmf(arma::sp_mat(M), 3, o);
    monotone(r);
    REQUIRE(arma::approx_equal(r.H.col(1), known.col(0), "absdiff", 0.0));
  }
}

TEST_CASE("KL on the simplex converges to the optimum of the convex W-problem", "[kl][constraints]") {
  // With H held, each row of W solves a convex problem on the simplex whose
  // optimality (KKT) conditions are: the gradient g_j = sum_t H_tj (1 - M_t /
  // (W H^T)_t) equals a common value where W_j > 0 and is no smaller where
  // W_j = 0. (The run stops when the objective no longer falls in floating
  // point, which leaves the gradient flat to about 1e-6 of its size.)
  const arma::mat M = poisson_counts(12, 40, 46) + 0.5;
  arma::arma_rng::set_seed(3);
  const arma::mat H0 = arma::randu(40, 4) + 0.05, W0 = arma::randu(12, 4);
  unmix::Options o;
  o.solver = unmix::Solver::mu;
  o.loss = unmix::Loss::kl;
  o.max_iter = 5000;
  o.tol = 0;
  o.W.simplex = true;
  o.H.fixed = true;
  const auto r = unmix::nmf(M, W0, H0, o);
  const arma::mat P = r.W * H0.t();
  const arma::mat g = (1.0 - M / P) * H0;  // 12 x 4
  for (arma::uword i = 0; i < M.n_rows; ++i) {
    // Entries still on their way to zero are left to the second test.
    const arma::uvec on = arma::find(r.W.row(i) > 1e-3);
    REQUIRE(!on.is_empty());
    const arma::rowvec gi = g.row(i);
    const double level = arma::mean(gi.elem(on));
    const double scale = arma::abs(gi).max() + 1.0;
    REQUIRE(arma::abs(gi.elem(on) - level).max() <= 1e-5 * scale);
    REQUIRE(gi.min() >= level - 1e-5 * scale);
  }
}

TEST_CASE("KL is refused where it is not implemented", "[kl]") {
  const arma::mat M = poisson_counts(20, 10, 44);
  unmix::Options o;
  o.loss = unmix::Loss::kl;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Catch::Matchers::Contains("solved by solver 'mu'"));
  o.solver = unmix::Solver::mu;
  o.H.minvol = 1.0;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 2, o), Catch::Matchers::Contains("not available with the KL loss"));
}
