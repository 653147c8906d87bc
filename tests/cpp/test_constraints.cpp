// Every solver x constraint combination offered keeps the penalized
// objective monotone and its constraint exact; the others are refused.
#include <catch2/catch.hpp>
#include <unmix.hpp>

#include "helpers.hpp"

namespace {

// A 4-neighbour grid graph over an nx x ny image (pixels in column-major order).
arma::sp_mat grid_graph(arma::uword nx, arma::uword ny) {
  std::vector<arma::uword> r, c;
  for (arma::uword x = 0; x < nx; ++x)
    for (arma::uword y = 0; y < ny; ++y) {
      const arma::uword i = x + nx * y;
      if (x + 1 < nx) { r.push_back(i); c.push_back(i + 1); r.push_back(i + 1); c.push_back(i); }
      if (y + 1 < ny) { r.push_back(i); c.push_back(i + nx); r.push_back(i + nx); c.push_back(i); }
    }
  arma::umat loc(2, r.size());
  loc.row(0) = arma::urowvec(r);
  loc.row(1) = arma::urowvec(c);
  return arma::sp_mat(loc, arma::vec(r.size(), arma::fill::ones), nx * ny, nx * ny);
}

void require_monotone(const std::vector<double>& f) {
  for (std::size_t i = 1; i < f.size(); ++i) REQUIRE(f[i] <= f[i - 1] + 1e-10 * f.front());
}

double roughness(const arma::mat& F, const arma::sp_mat& S) {
  const arma::vec d = arma::vec(arma::sum(S, 1));
  return arma::accu(F % (F.each_col() % d)) - arma::accu(F % (S * F));
}

}  // namespace

TEST_CASE("sum-to-one rows are exact and the objective monotone (bpp, mu)", "[constraints][big]") {
  // M (channels x pixels) = E A^T with abundance rows on the simplex: the
  // core's H (pixels x k) carries the constraint.
  arma::arma_rng::set_seed(31);
  arma::mat A(300, 3, arma::fill::randu);
  A.each_col() /= arma::sum(A, 1);
  const arma::mat E(40, 3, arma::fill::randu);
  const arma::mat M = E * A.t() + 0.01 * arma::mat(40, 300, arma::fill::randu);
  for (auto solver : {unmix::Solver::bpp, unmix::Solver::mu, unmix::Solver::admm}) {
    unmix::Options o;
    o.solver = solver;
    o.H.simplex = true;
    o.max_iter = 60;
    o.tol = 0;
    const auto r = unmix::nmf(M, 3, o);
    INFO(unmix::to_string(solver));
    REQUIRE(arma::abs(arma::sum(r.H, 1) - 1.0).max() <= 1e-9);
    REQUIRE(r.H.min() >= 0.0);
    require_monotone(r.objective);
  }
  unmix::Options o;
  o.solver = unmix::Solver::hals;
  o.H.simplex = true;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, o), Catch::Matchers::Contains("use 'bpp', 'mu' or 'admm'"));
}

TEST_CASE("scaled sum-to-one: row i sums to its own target, exactly and monotone", "[constraints]") {
  // Pixels with their own intensity c_i: M = E (diag(c) A)^T, the core's H
  // rows summing to c_i. Every rule that takes the simplex takes the sums,
  // with the graph term too; the KL loss bisects to the row's sum.
  arma::arma_rng::set_seed(37);
  arma::mat A(200, 3, arma::fill::randu);
  A.each_col() /= arma::sum(A, 1);
  const arma::vec c = 0.2 + 2.0 * arma::vec(200, arma::fill::randu);
  A.each_col() %= c;
  const arma::mat E(30, 3, arma::fill::randu);
  const arma::mat M = E * A.t() + 0.01 * arma::mat(30, 200, arma::fill::randu);
  arma::vec sums = c;
  sums(7) = 0.0;  // a pixel with no signal: its row is zero
  const auto S = std::make_shared<const arma::sp_mat>(grid_graph(20, 10));
  for (auto solver : {unmix::Solver::bpp, unmix::Solver::mu, unmix::Solver::admm})
    for (double smooth : {0.0, 0.05}) {
      unmix::Options o;
      o.solver = solver;
      o.H.simplex = true;
      o.H.simplex_sums = sums;
      o.H.smooth = smooth;
      if (smooth > 0) o.H.graph = S;
      o.max_iter = 40;
      o.tol = 0;
      const auto r = unmix::nmf(M, 3, o);
      INFO(unmix::to_string(solver) << " smooth " << smooth);
      REQUIRE(arma::abs(arma::sum(r.H, 1) - sums).max() <= 1e-9 * sums.max());
      REQUIRE(r.H.min() >= 0.0);
      require_monotone(r.objective);
      // Unit sums on data with intensities fit worse than the right sums.
      unmix::Options unit = o;
      unit.H.simplex_sums.reset();
      REQUIRE(r.objective.back() < unmix::nmf(M, 3, unit).objective.back());
    }
  unmix::Options kl;
  kl.solver = unmix::Solver::mu;
  kl.loss = unmix::Loss::kl;
  kl.H.simplex = true;
  kl.H.simplex_sums = sums;
  kl.max_iter = 40;
  kl.tol = 0;
  const auto r = unmix::nmf(M, 3, kl);
  REQUIRE(arma::abs(arma::sum(r.H, 1) - sums).max() <= 1e-9 * sums.max());
  require_monotone(r.objective);
  // Sums without the simplex, of the wrong length, negative or with bounds are refused.
  unmix::Options bad;
  bad.H.simplex_sums = sums;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, bad), Catch::Matchers::Contains("given only with simplex"));
  bad.H.simplex = true;
  bad.H.simplex_sums = arma::vec(5, arma::fill::ones);
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, bad), Catch::Matchers::Contains("of length 200"));
  bad.H.simplex_sums = -sums;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, bad), Catch::Matchers::Contains("finite and >= 0"));
  bad.H.simplex_sums = sums;
  bad.H.upper = 5.0;
  bad.solver = unmix::Solver::admm;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, bad), Catch::Matchers::Contains("without bounds"));
}

TEST_CASE("bounds hold and the objective is monotone (hals, mu)", "[constraints]") {
  const arma::mat M = test::noisy(test::low_rank<double>(50, 40, 3, 33), 0.1, 34);
  for (auto solver : {unmix::Solver::hals, unmix::Solver::mu, unmix::Solver::admm}) {
    unmix::Options o;
    o.solver = solver;
    o.W.upper = 0.4;
    o.H.lower = 0.05;
    o.H.upper_cols = {1.0, 2.0, 3.0};
    o.max_iter = 50;
    o.tol = 0;
    const auto r = unmix::nmf(M, 3, o);
    REQUIRE(r.W.max() <= 0.4);
    REQUIRE(r.H.min() >= 0.05);
    for (arma::uword j = 0; j < 3; ++j) REQUIRE(r.H.col(j).max() <= 1.0 + j);
    require_monotone(r.objective);
  }
  unmix::Options o;
  o.W.upper = 0.4;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, o), Catch::Matchers::Contains("use 'hals', 'mu' or 'admm'"));
}

TEST_CASE("fixed columns keep their values and the rest fits around them", "[constraints]") {
  arma::arma_rng::set_seed(35);
  const arma::mat W(60, 3, arma::fill::randu), H(45, 3, arma::fill::randu);
  const arma::mat M = W * H.t();
  for (auto solver : {unmix::Solver::bpp, unmix::Solver::hals, unmix::Solver::mu, unmix::Solver::admm}) {
    unmix::Options o;
    o.solver = solver;
    o.W.fixed_cols = {0, 2};
    o.W.fixed_values = W.cols(arma::uvec{0, 2});
    o.max_iter = 500;
    o.tol = 1e-12;
    const auto r = unmix::nmf(M, 3, o);
    INFO(unmix::to_string(solver));
    REQUIRE(arma::approx_equal(r.W.cols(arma::uvec{0, 2}), W.cols(arma::uvec{0, 2}), "absdiff", 0.0));
    require_monotone(r.objective);
    // Two known columns out of three make the rest identifiable; MU gets
    // there slowly, so it only has to make progress.
    const double bound = solver == unmix::Solver::bpp    ? 1e-4
                         : solver == unmix::Solver::hals ? 1e-2
                                                         : 0.5 * r.rel_error.front();
    REQUIRE(r.rel_error.back() < bound);
  }
}

TEST_CASE("graph smoothness lowers roughness and keeps the objective monotone", "[constraints]") {
  const arma::uword nx = 12, ny = 10;
  const arma::sp_mat S = grid_graph(nx, ny);
  const arma::mat M = test::noisy(test::low_rank<double>(30, nx * ny, 3, 36), 0.3, 37);
  for (auto solver : {unmix::Solver::bpp, unmix::Solver::hals, unmix::Solver::mu, unmix::Solver::admm}) {
    unmix::Options o;
    o.solver = solver;
    o.init = unmix::Init::random;
    o.max_iter = 80;
    o.tol = 0;
    const auto plain = unmix::nmf(M, 3, o);
    o.H.graph = std::make_shared<const arma::sp_mat>(S);
    o.H.smooth = 5.0;
    const auto smooth = unmix::nmf(M, 3, o);
    INFO(unmix::to_string(solver));
    require_monotone(smooth.objective);
    // Roughness relative to scale (the factorization's scale is free).
    const double rough_plain = roughness(plain.H, S) / arma::accu(arma::square(plain.H));
    const double rough_smooth = roughness(smooth.H, S) / arma::accu(arma::square(smooth.H));
    REQUIRE(rough_smooth < 0.8 * rough_plain);
    // The reported objective includes the graph term exactly.
    const arma::mat Rm = M - smooth.W * smooth.H.t();
    const double direct = 0.5 * arma::accu(Rm % Rm) + 0.5 * 5.0 * roughness(smooth.H, S);
    REQUIRE(std::abs(direct - smooth.objective.back()) <= 1e-9 * smooth.objective.front());
  }
}

TEST_CASE("the Laplacian bound of the graph majorizer is safe and at most Gershgorin's", "[constraints]") {
  // Weighted random graphs with self-loops and isolated vertices, a grid
  // (regular: no gain) and a star (one hub: d_max far above the rest).
  std::vector<arma::sp_mat> graphs = {grid_graph(7, 5)};
  for (unsigned seed = 1; seed <= 5; ++seed) {
    arma::arma_rng::set_seed(seed);
    arma::sp_mat A = arma::sprandu<arma::sp_mat>(40, 40, 0.08);
    A.rows(35, 39).zeros();
    A.cols(35, 39).zeros();  // five vertices without edges
    graphs.push_back(arma::sp_mat(A + A.t()));
  }
  arma::sp_mat star(30, 30);
  for (arma::uword i = 1; i < 30; ++i) star(0, i) = star(i, 0) = 1.0;
  graphs.push_back(star);
  for (const auto& S : graphs) {
    const arma::vec d(arma::sum(S, 1));
    const double bound = unmix::regularize::laplacian_bound(S, d);
    const arma::vec eig = arma::eig_sym(arma::mat(arma::diagmat(d) - S));
    REQUIRE(bound >= eig.max() * (1 - 1e-12));
    REQUIRE(bound >= d.max());
    REQUIRE(bound <= 2 * d.max() * (1 + 1e-8));
  }
  // The star: lambda_max(L) = rho(D + S) = 30 (bipartite), 2 d_max = 58.
  REQUIRE(unmix::regularize::laplacian_bound(star, arma::vec(arma::sum(star, 1))) < 30.1);
}

TEST_CASE("graph smoothness with a free scale does not drift away from the graph", "[constraints]") {
  // Without a convention for the scale, ever more iterations of an exact
  // solver shrink the smoothed factor and grow the other until the graph
  // term has no effect; weighted by the other factor's column norms it has
  // a minimizer: a long run keeps the smoothing of a short one.
  const arma::uword nx = 12, ny = 10;
  const arma::sp_mat S = grid_graph(nx, ny);
  const arma::mat M = test::noisy(test::low_rank<double>(30, nx * ny, 3, 36), 0.3, 37);
  unmix::Options o;
  o.init = unmix::Init::random;
  o.tol = 0;
  o.H.graph = std::make_shared<const arma::sp_mat>(S);
  o.H.smooth = 5.0;
  o.max_iter = 50;
  const auto short_run = unmix::nmf(M, 3, o);
  o.max_iter = 1000;
  const auto long_run = unmix::nmf(M, 3, o);
  require_monotone(long_run.objective);
  // Returned with the columns of W (the basis, 30 rows) at norm 1 / sqrt(30),
  // where the term is 1/2 gamma tr(H^T L H) as written.
  REQUIRE(arma::abs(arma::sqrt(30.0 * arma::sum(arma::square(long_run.W), 0)) - 1.0).max() < 1e-12);
  const arma::mat Rm = M - long_run.W * long_run.H.t();
  REQUIRE(std::abs(0.5 * arma::accu(Rm % Rm) + 0.5 * 5.0 * roughness(long_run.H, S) -
                   long_run.objective.back()) <= 1e-9 * long_run.objective.front());
  const double rough_short = roughness(short_run.H, S) / arma::accu(arma::square(short_run.H));
  const double rough_long = roughness(long_run.H, S) / arma::accu(arma::square(long_run.H));
  REQUIRE(rough_long < 1.1 * rough_short);
  REQUIRE(long_run.objective.back() < short_run.objective.back());
}

TEST_CASE("minimum volume: monotone, exact objective, smaller volume (bpp, hals)", "[constraints][minvol]") {
  const arma::mat M = test::noisy(test::low_rank<double>(40, 120, 3, 45), 0.05, 46);
  for (auto solver : {unmix::Solver::bpp, unmix::Solver::hals, unmix::Solver::admm}) {
    unmix::Options o;
    o.solver = solver;
    o.max_iter = 80;
    o.tol = 0;
    const auto plain = unmix::nmf(M, 3, o);
    o.W.minvol = 5.0;
    const auto mv = unmix::nmf(M, 3, o);
    INFO(unmix::to_string(solver));
    require_monotone(mv.objective);
    // The reported objective holds lambda log det(W^T W / delta + I), with
    // delta = 0.1 tr(W0^T W0) / k fixed from the start: check it directly.
    arma::arma_rng::set_seed(47);
    const arma::mat W0(40, 3, arma::fill::randu), H0(120, 3, arma::fill::randu);
    unmix::Options oc = o;
    oc.init = unmix::Init::custom;
    const auto c = unmix::nmf(M, W0, H0, oc);
    const double delta = 0.1 * arma::trace(W0.t() * W0) / 3.0;
    const arma::mat Rm = M - c.W * c.H.t();
    const double direct = 0.5 * arma::accu(Rm % Rm) +
                          5.0 * arma::log_det_sympd(c.W.t() * c.W / delta + arma::eye(3, 3));
    REQUIRE(std::abs(direct - c.objective.back()) <= 1e-9 * std::abs(c.objective.front()));
    require_monotone(c.objective);
    // Scale-free volume: det of the normalized Gram matrix.
    auto volume = [](arma::mat W) {
      W.each_row() /= arma::sqrt(arma::sum(arma::square(W), 0));
      return arma::det(W.t() * W);
    };
    REQUIRE(volume(mv.W) <= volume(plain.W) + 1e-12);
  }
  unmix::Options o;
  o.solver = unmix::Solver::mu;
  o.W.minvol = 1.0;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, o), Catch::Matchers::Contains("use 'bpp', 'hals' or 'admm'"));
}
