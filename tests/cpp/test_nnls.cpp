// Block principal pivoting against an exhaustive reference: for small k the
// NNLS minimum is the best of the passive sets' unconstrained minimizers
// that are feasible, found by trying all 2^k sets.
#include <catch2/catch.hpp>
#include <unmix.hpp>

#include "helpers.hpp"

namespace {

double objective(const arma::mat& G, const arma::vec& r, const arma::vec& x) {
  return 0.5 * arma::dot(x, G * x) - arma::dot(r, x);
}

struct Minimum {
  arma::vec x;
  double f;
};

// The minimum of 1/2 x^T G x - r^T x over x >= 0 (and sum x = 1 with
// `simplex`). Every candidate is a feasible point and the basic minimizer is
// among them, so the smallest value is the minimum even for a singular G
// (then r must lie in the range of G, as R = X H does for G = H^T H).
Minimum exhaustive_nnls(const arma::mat& G, const arma::vec& r, bool simplex = false) {
  const arma::uword k = G.n_rows;
  Minimum best{arma::vec(k, arma::fill::zeros), simplex ? arma::datum::inf : 0.0};
  for (arma::uword mask = 1; mask < (arma::uword(1) << k); ++mask) {
    std::vector<arma::uword> idx;
    for (arma::uword i = 0; i < k; ++i)
      if (mask & (arma::uword(1) << i)) idx.push_back(i);
    const arma::uvec P(idx);
    const arma::uword p = P.n_elem;
    arma::mat A = G.submat(P, P);
    arma::vec b = r.elem(P);
    if (simplex) {  // the bordered system of the equality's multiplier
      A.resize(p + 1, p + 1);
      A.row(p).head(p).ones();
      A.col(p).head(p).ones();
      b.resize(p + 1);
      b(p) = 1;
    }
    const arma::vec xp = arma::vec(arma::pinv(A) * b).head(p);
    if (xp.min() < -1e-10 || (simplex && std::abs(arma::accu(xp) - 1) > 1e-10)) continue;
    arma::vec x(k, arma::fill::zeros);
    x.elem(P) = arma::clamp(xp, 0.0, arma::datum::inf);
    if (simplex) x /= arma::accu(x);
    const double f = objective(G, r, x);
    if (f < best.f) best = {x, f};
  }
  return best;
}

}  // namespace

TEST_CASE("BPP NNLS equals the exhaustive solution", "[nnls]") {
  arma::arma_rng::set_seed(7);
  for (int trial = 0; trial < 20; ++trial) {
    const arma::uword k = 2 + trial % 6, N = 50;
    arma::mat C(3 * k, k, arma::fill::randn);
    const arma::mat G = C.t() * C;
    const arma::mat R(N, k, arma::fill::randn);
    arma::mat X(N, k, arma::fill::randu);  // an arbitrary warm start
    unmix::rules::BlockPivotingNNLS<double> nnls;
    nnls.solve(G, R, X);
    for (arma::uword c = 0; c < N; ++c) {
      const arma::vec ref = exhaustive_nnls(G, R.row(c).t()).x;
      REQUIRE(arma::abs(X.row(c).t() - ref).max() <= 1e-10 * std::max(1.0, arma::abs(ref).max()));
    }
  }
}

// Degenerate problems as alternating NMF meets them: a factor with duplicate,
// proportional or zero columns makes G singular, and so does one with more
// columns than rows (more components than channels; here G of rank 2);
// empty rows of the data give zero right-hand sides.
TEMPLATE_TEST_CASE("BPP NNLS reaches the exhaustive minimum on degenerate problems, plain and on "
                   "the simplex", "[nnls]", double, float) {
  using eT = TestType;
  arma::arma_rng::set_seed(8);
  for (int trial = 0; trial < 60; ++trial) {
    const arma::uword k = 2 + trial % 5, N = 30;
    const int degeneracy = trial / 6 % 5;
    const bool simplex = trial / 30 % 2;
    INFO("trial " << trial << ", k = " << k << ", degeneracy " << degeneracy << ", simplex " << simplex);
    arma::mat C(3 * k, k, arma::fill::randu);
    if (degeneracy == 1) C.col(k - 1) = C.col(0);
    if (degeneracy == 2) C.col(k - 1) = 2.5 * C.col(0);
    if (degeneracy == 3) C.col(k - 1).zeros();
    if (degeneracy == 4) C = arma::randu<arma::mat>(3 * k, 2) * arma::randu<arma::mat>(2, k);
    arma::mat R = arma::mat(N, 3 * k, arma::fill::randn) * C;
    R.rows(0, 4).zeros();
    // Warm starts: random with zeros, all zeros, and a row's exact answer.
    arma::mat X0(N, k, arma::fill::randu);
    X0.elem(arma::find(arma::randu<arma::mat>(N, k) < 0.3)).zeros();
    X0.rows(10, 14).zeros();
    // Round the problem to eT first, so that the reference solves it exactly.
    const arma::Mat<eT> Ge = arma::conv_to<arma::Mat<eT>>::from(C.t() * C);
    const arma::Mat<eT> Re = arma::conv_to<arma::Mat<eT>>::from(R);
    const arma::mat G = arma::conv_to<arma::mat>::from(Ge);
    arma::Mat<eT> X = arma::conv_to<arma::Mat<eT>>::from(X0);
    unmix::rules::BlockPivotingNNLS<eT> nnls;
    nnls.solve(Ge, Re, X, simplex);
    const double tol = test::Tol<eT>::rel * std::max(1.0, arma::abs(G).max());
    for (arma::uword c = 0; c < N; ++c) {
      INFO("row " << c);
      const arma::vec r = arma::conv_to<arma::vec>::from(Re.row(c).t());
      const arma::vec x = arma::conv_to<arma::vec>::from(X.row(c).t());
      const Minimum ref = exhaustive_nnls(G, r, simplex);
      REQUIRE(x.min() >= 0.0);
      if (simplex) REQUIRE(std::abs(arma::accu(x) - 1) <= tol);
      const double scale = std::max({1.0, std::abs(ref.f), arma::abs(r).max()});
      REQUIRE(std::abs(objective(G, r, x) - ref.f) <= tol * scale);
      if (degeneracy == 0)  // G is definite: the minimizer is unique
        REQUIRE(arma::abs(x - ref.x).max() <= 10 * tol * std::max(1.0, arma::abs(ref.x).max()));
      if (arma::all(r == 0.0) && !simplex) REQUIRE(arma::all(x == 0.0));
    }
  }
}

// A distributed run splits the rows among ranks; it equals the serial run
// only if a row's solution does not depend on the rows solved with it.
TEST_CASE("BPP NNLS solves every row as if it were alone", "[nnls]") {
  arma::arma_rng::set_seed(9);
  const arma::uword k = 8, N = 70001;  // several blocks, the last one partial
  const arma::mat C(20, k, arma::fill::randu);
  const arma::mat G = C.t() * C;
  arma::mat R = arma::mat(N, 20, arma::fill::randn) * C;
  R.rows(100, 199).zeros();
  arma::mat X0(N, k, arma::fill::randu);
  X0.elem(arma::find(arma::randu<arma::mat>(N, k) < 0.4)).zeros();
  for (bool simplex : {false, true}) {
    INFO("simplex " << simplex);
    arma::mat X = X0;
    unmix::rules::BlockPivotingNNLS<double> nnls;
    nnls.solve(G, R, X, simplex);
    // Every 61st row alone, and a shuffled subset together.
    for (arma::uword c = 0; c < N; c += 61) {
      arma::mat x = X0.row(c);
      nnls.solve(G, R.row(c), x, simplex);
      REQUIRE(arma::all(arma::vectorise(x == X.row(c))));
    }
    const arma::uvec rows = arma::shuffle(arma::regspace<arma::uvec>(0, 3, N - 1));
    arma::mat Xs = X0.rows(rows);
    nnls.solve(G, R.rows(rows), Xs, simplex);
    REQUIRE(arma::all(arma::vectorise(Xs == X.rows(rows))));
  }
}

TEST_CASE("BPP NNLS satisfies KKT at k = 40 with a cold and a warm start", "[nnls]") {
  arma::arma_rng::set_seed(11);
  const arma::uword k = 40, N = 300;
  arma::mat C(200, k, arma::fill::randu);
  const arma::mat G = C.t() * C;
  const arma::mat R = arma::mat(N, 200, arma::fill::randn) * C;
  unmix::rules::BlockPivotingNNLS<double> nnls;
  arma::mat X;
  nnls.solve(G, R, X);
  arma::mat Xwarm = X;
  const int rounds_warm = nnls.solve(G, R, Xwarm);
  CHECK(rounds_warm == 0);  // the exact answer is already optimal
  REQUIRE(arma::abs(Xwarm - X).max() <= 1e-12 * arma::abs(X).max());
  const arma::mat Y = X * G - R;
  const double scale = arma::abs(R).max();
  REQUIRE(X.min() >= 0.0);
  REQUIRE(Y.min() >= -1e-9 * scale);
  REQUIRE(arma::abs(X % Y).max() <= 1e-9 * scale * arma::abs(X).max());
}

TEST_CASE("BPP NNLS handles a singular Gram matrix", "[nnls]") {
  arma::mat G = {{1, 1}, {1, 1}};  // two identical columns
  arma::mat R = {{2, 2}, {-1, -1}};
  arma::mat X;
  unmix::rules::BlockPivotingNNLS<double> nnls;
  nnls.solve(G, R, X);
  REQUIRE(X.is_finite());
  // Any split of 2 between the two variables is optimal; -1 gives zero.
  CHECK(std::abs(X(0, 0) + X(0, 1) - 2.0) < 1e-12);
  CHECK(X(1, 0) == 0.0);
  CHECK(X(1, 1) == 0.0);
}

// G of rank far below k, as alternating NMF meets it with more components
// than the data has channels (G = H H^T with H of k x 16): the pivoting
// alone went through singular passive blocks, accepted some whose pivots
// were rounding, hit its round cap and returned rows above 1e3 whose
// objective was worse than the warm start's.
TEMPLATE_TEST_CASE("BPP NNLS is exact and never worse than its warm start when G's rank is below k",
                   "[nnls]", double, float) {
  using eT = TestType;
  arma::arma_rng::set_seed(12);
  const arma::uword k = 100, channels = 16, N = 400;
  const arma::mat C(k, channels, arma::fill::randu), D(N, channels, arma::fill::randu);
  const arma::Mat<eT> G = arma::conv_to<arma::Mat<eT>>::from(C * C.t());
  const arma::Mat<eT> R = arma::conv_to<arma::Mat<eT>>::from(D * C.t());
  const arma::Mat<eT> X0 = arma::conv_to<arma::Mat<eT>>::from(0.1 * arma::randu<arma::mat>(N, k));
  arma::Mat<eT> X = X0;
  unmix::rules::BlockPivotingNNLS<eT> nnls;
  nnls.solve(G, R, X);
  const arma::mat g = arma::conv_to<arma::mat>::from(G), r = arma::conv_to<arma::mat>::from(R),
                  x = arma::conv_to<arma::mat>::from(X), x0 = arma::conv_to<arma::mat>::from(X0);
  const double tol = 10 * test::Tol<eT>::rel * arma::abs(r).max();
  const arma::mat Y = x * g - r;
  REQUIRE(x.min() >= 0.0);
  REQUIRE(Y.min() >= -tol);
  REQUIRE(arma::abs(x % Y).max() <= tol * std::max(1.0, x.max()));
  for (arma::uword c = 0; c < N; ++c) {
    INFO("row " << c);
    REQUIRE(objective(g, r.row(c).t(), x.row(c).t()) <= objective(g, r.row(c).t(), x0.row(c).t()));
  }
  // Each row as if it were alone, as a distributed run needs.
  for (arma::uword c = 0; c < N; c += 37) {
    arma::Mat<eT> one = X0.row(c);
    nnls.solve(G, R.row(c), one);
    REQUIRE(arma::all(arma::vectorise(one == X.row(c))));
  }
}
