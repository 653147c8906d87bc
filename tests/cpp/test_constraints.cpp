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

TEST_CASE("sum-to-one rows are exact and the objective monotone (bpp, mu)", "[constraints]") {
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
