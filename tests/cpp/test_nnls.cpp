// Block principal pivoting against an exhaustive reference: for small k the
// NNLS solution is the unique passive set whose unconstrained solution
// satisfies the KKT conditions, found by trying all 2^k sets.
#include <catch2/catch.hpp>
#include <unmix.hpp>

#include "helpers.hpp"

namespace {

arma::vec exhaustive_nnls(const arma::mat& G, const arma::vec& r) {
  const arma::uword k = G.n_rows;
  double best = std::numeric_limits<double>::infinity();
  arma::vec best_x(k, arma::fill::zeros);
  for (arma::uword mask = 0; mask < (arma::uword(1) << k); ++mask) {
    std::vector<arma::uword> idx;
    for (arma::uword i = 0; i < k; ++i)
      if (mask & (arma::uword(1) << i)) idx.push_back(i);
    arma::vec x(k, arma::fill::zeros);
    if (!idx.empty()) {
      const arma::uvec p(idx);
      arma::vec xp = arma::solve(G.submat(p, p), r.elem(p));
      if (xp.min() < 0) continue;
      x.elem(p) = xp;
    }
    const double f = 0.5 * arma::dot(x, G * x) - arma::dot(r, x);
    if (f < best) { best = f; best_x = x; }
  }
  return best_x;
}

}  // namespace

TEST_CASE("BPP NNLS equals the exhaustive solution", "[nnls]") {
  arma::arma_rng::set_seed(7);
  for (int trial = 0; trial < 20; ++trial) {
    const arma::uword k = 2 + trial % 6, N = 50;
    arma::mat C(3 * k, k, arma::fill::randn);
    const arma::mat G = C.t() * C;
    const arma::mat Rt(k, N, arma::fill::randn);
    arma::mat X(k, N, arma::fill::randu);  // an arbitrary warm start
    unmix::rules::BlockPivotingNNLS<double> nnls;
    nnls.solve(G, Rt, X);
    for (arma::uword c = 0; c < N; ++c) {
      const arma::vec ref = exhaustive_nnls(G, Rt.col(c));
      REQUIRE(arma::abs(X.col(c) - ref).max() <= 1e-10 * std::max(1.0, arma::abs(ref).max()));
    }
  }
}

TEST_CASE("BPP NNLS satisfies KKT at k = 40 with a cold and a warm start", "[nnls]") {
  arma::arma_rng::set_seed(11);
  const arma::uword k = 40, N = 300;
  arma::mat C(200, k, arma::fill::randu);
  const arma::mat G = C.t() * C;
  const arma::mat Rt = C.t() * arma::mat(200, N, arma::fill::randn);
  unmix::rules::BlockPivotingNNLS<double> nnls;
  arma::mat X;
  nnls.solve(G, Rt, X);
  arma::mat Xwarm = X;
  const int rounds_warm = nnls.solve(G, Rt, Xwarm);
  CHECK(rounds_warm == 0);  // the exact answer is already optimal
  REQUIRE(arma::abs(Xwarm - X).max() <= 1e-12 * arma::abs(X).max());
  const arma::mat Y = G * X - Rt;
  const double scale = arma::abs(Rt).max();
  REQUIRE(X.min() >= 0.0);
  REQUIRE(Y.min() >= -1e-9 * scale);
  REQUIRE(arma::abs(X % Y).max() <= 1e-9 * scale * arma::abs(X).max());
}

TEST_CASE("BPP NNLS handles a singular Gram matrix", "[nnls]") {
  arma::mat G = {{1, 1}, {1, 1}};  // two identical columns
  arma::mat Rt = {{2, -1}, {2, -1}};
  arma::mat X;
  unmix::rules::BlockPivotingNNLS<double> nnls;
  nnls.solve(G, Rt, X);
  REQUIRE(X.is_finite());
  // Any split of 2 between the two variables is optimal; -1 gives zero.
  CHECK(std::abs(X(0, 0) + X(1, 0) - 2.0) < 1e-12);
  CHECK(X(0, 1) == 0.0);
  CHECK(X(1, 1) == 0.0);
}
