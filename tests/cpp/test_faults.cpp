// Long runs and numerical faults: a run resumed from a checkpoint is the
// uninterrupted run; a dead component is re-seeded and recorded; a factor
// that breaks down stops the run that iteration with the likely cause.
#include <catch2/catch.hpp>
#include <unmix.hpp>
#include <unmix/regularize/grid_graph.hpp>

#include <memory>
#include <vector>

#include "helpers.hpp"

namespace {

struct Case {
  const char* what;
  unmix::Options opt;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (auto solver : {unmix::Solver::mu, unmix::Solver::hals, unmix::Solver::bpp}) {
    unmix::Options o;
    o.solver = solver;
    o.max_iter = 30;
    o.tol = 0;
    o.W.l1 = 0.05;
    o.H.l2 = 0.1;
    out.push_back({unmix::to_string(solver), o});
  }
  unmix::Options simplex;
  simplex.max_iter = 30;
  simplex.tol = 0;
  simplex.W.simplex = true;
  out.push_back({"bpp sum-to-one", simplex});
  unmix::Options minvol = simplex;
  minvol.W.simplex = false;
  minvol.H.minvol = 0.5;  // its delta is fixed at the start: the checkpoint must carry it
  out.push_back({"bpp minvol", minvol});
  // Extrapolation carries its plain iterates and beta in the state; with M
  // transposed H is updated first and the fused pass extrapolates it.
  for (auto solver : {unmix::Solver::bpp, unmix::Solver::admm}) {
    unmix::Options x = out[2].opt;
    x.solver = solver;
    x.extrapolate = true;
    out.push_back({solver == unmix::Solver::bpp ? "bpp extrapolated" : "admm extrapolated", x});
    x.transposed = true;
    out.push_back({solver == unmix::Solver::bpp ? "bpp extrapolated, fused" : "admm extrapolated, fused", x});
  }
  unmix::Options xs = simplex;
  xs.extrapolate = true;
  xs.transposed = true;
  out.push_back({"bpp sum-to-one extrapolated, fused", xs});
  unmix::Options kl;
  kl.solver = unmix::Solver::mu;
  kl.loss = unmix::Loss::kl;
  kl.max_iter = 30;
  kl.tol = 0;
  out.push_back({"mu kl", kl});
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("a resumed run gives the factors of the uninterrupted one", "[faults]", float,
                   double) {
  using eT = TestType;
  const arma::Mat<eT> M = test::noisy(test::low_rank<eT>(50, 40, 4, 3), 0.05, 4);
  for (const Case& c : cases()) {
    INFO(c.what);
    std::vector<unmix::State<eT>> saved;
    unmix::Checkpointing<eT> ck;
    ck.every = 7;
    ck.save = [&](const unmix::State<eT>& s) { saved.push_back(s); };
    const auto whole = unmix::nmf(M, 4, c.opt, {}, ck);
    REQUIRE(saved.size() == 5);  // iterations 7, 14, 21, 28 and the last one
    REQUIRE(saved[1].iteration == 14);
    REQUIRE(saved.back().iteration == 30);

    unmix::Checkpointing<eT> again;
    again.resume = &saved[1];
    const auto resumed = unmix::nmf(M, 4, c.opt, {}, again);
    REQUIRE(resumed.n_iter == 30);
    REQUIRE(resumed.objective.size() == whole.objective.size());
    // Same operations on the same numbers: equal, not merely close.
    REQUIRE(arma::approx_equal(resumed.W, whole.W, "absdiff", 0));
    REQUIRE(arma::approx_equal(resumed.H, whole.H, "absdiff", 0));
    for (std::size_t i = 0; i < whole.objective.size(); ++i)
      REQUIRE(resumed.objective[i] == whole.objective[i]);

    // From the last iteration's state (killed before the caller kept the
    // result): nothing left to run, the same result.
    again.resume = &saved.back();
    const auto ended = unmix::nmf(M, 4, c.opt, {}, again);
    REQUIRE(ended.n_iter == 30);
    REQUIRE(ended.stop_reason == whole.stop_reason);
    REQUIRE(arma::approx_equal(ended.W, whole.W, "absdiff", 0));
    REQUIRE(arma::approx_equal(ended.H, whole.H, "absdiff", 0));
  }
}

TEST_CASE("a converged run resumed from its last state stops there", "[faults]") {
  // The graph term makes the end of the run rescale the factors, which the
  // saved state does not hold yet.
  const arma::mat M = test::noisy(test::low_rank<double>(60, 40, 4, 8), 0.05, 9);
  unmix::Options o;
  o.tol = 1e-4;
  o.W.graph = std::make_shared<const arma::sp_mat>(unmix::regularize::grid_graph(6, 10));
  o.W.smooth = 0.1;
  std::vector<unmix::State<double>> saved;
  unmix::Checkpointing<double> ck;
  ck.every = 1;
  ck.save = [&](const unmix::State<double>& s) { saved.push_back(s); };
  const auto whole = unmix::nmf(M, 4, o, {}, ck);
  REQUIRE(whole.stop_reason == unmix::StopReason::tol);
  REQUIRE(whole.n_iter < o.max_iter);
  unmix::Checkpointing<double> again;
  again.resume = &saved.back();
  const auto ended = unmix::nmf(M, 4, o, {}, again);
  REQUIRE(ended.n_iter == whole.n_iter);
  REQUIRE(ended.converged);
  REQUIRE(arma::approx_equal(ended.W, whole.W, "absdiff", 0));
  REQUIRE(arma::approx_equal(ended.H, whole.H, "absdiff", 0));
  // A tighter tolerance goes on from there.
  o.tol = 0;
  o.max_iter = whole.n_iter + 2;
  REQUIRE(unmix::nmf(M, 4, o, {}, again).n_iter == whole.n_iter + 2);
}

TEST_CASE("resuming checks the state against the problem", "[faults]") {
  const arma::mat M = test::low_rank<double>(30, 20, 3, 5);
  std::vector<unmix::State<double>> saved;
  unmix::Checkpointing<double> ck;
  ck.every = 5;
  ck.save = [&](const unmix::State<double>& s) { saved.push_back(s); };
  unmix::Options o;
  o.max_iter = 10;
  o.tol = 0;
  unmix::nmf(M, 3, o, {}, ck);
  unmix::Checkpointing<double> again;
  again.resume = &saved[0];
  REQUIRE_THROWS_WITH(unmix::nmf(M, 4, o, {}, again), Catch::Contains("(another problem, k or process grid)"));
  o.max_iter = 4;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, o, {}, again), Catch::Contains("max_iter must be >= the 5 iterations"));
  o.max_iter = 10;
  const arma::mat other = 2 * M;
  REQUIRE_THROWS_WITH(unmix::nmf(other, 3, o, {}, again), Catch::Contains("comes from other data"));
  unmix::State<double> bad = saved[0];
  bad.W(0, 0) = -1;
  again.resume = &bad;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, o, {}, again), Catch::Contains("not finite and non-negative"));
}

TEST_CASE("checkpoints by the clock come on time", "[faults]") {
  const arma::mat M = test::low_rank<double>(200, 150, 5, 6);
  int calls = 0;
  unmix::Checkpointing<double> ck;
  ck.seconds = 1e-9;  // every iteration is late
  ck.save = [&](const unmix::State<double>&) { ++calls; };
  unmix::Options o;
  o.max_iter = 6;
  o.tol = 0;
  unmix::nmf(M, 5, o, {}, ck);
  REQUIRE(calls == 6);
}

TEST_CASE("a dead component is re-seeded once and recorded", "[faults]") {
  // Rank 4 exactly; the start has component 3 zero in both factors, so no
  // rule can bring it back: without re-seeding the fit is stuck at rank 3.
  const arma::mat M = test::low_rank<double>(60, 50, 4, 7);
  arma::mat W0(60, 4, arma::fill::randu), H0(50, 4, arma::fill::randu);
  W0.col(3).zeros();
  H0.col(3).zeros();
  for (auto solver : {unmix::Solver::mu, unmix::Solver::hals, unmix::Solver::bpp}) {
    INFO(unmix::to_string(solver));
    unmix::Options o;
    o.solver = solver;
    o.max_iter = solver == unmix::Solver::mu ? 2000 : 300;
    o.tol = 1e-9;
    const auto r = unmix::nmf(M, W0, H0, o);
    // MU keeps zeros: H's column is dead too and gets its own start.
    REQUIRE(r.events.size() == (solver == unmix::Solver::mu ? 2 : 1));
    REQUIRE(r.events[0].iteration == 1);
    REQUIRE_THAT(r.events[0].what, Catch::Contains("component 3 of W became zero and was re-seeded"));
    REQUIRE(arma::norm(r.W.col(3)) > 0);
    // The best rank-3 fit of this matrix is far worse than what we reach.
    const arma::vec s = arma::svd(M);
    const double rank3_floor = s(3) / arma::norm(s);
    REQUIRE(r.rel_error.back() < rank3_floor / 5);
  }
}

TEST_CASE("a component removed by the penalties stays removed, recorded", "[faults]") {
  const arma::mat M = test::low_rank<double>(40, 30, 2, 8);
  unmix::Options o;
  o.solver = unmix::Solver::bpp;
  o.max_iter = 50;
  o.W.l1 = 1e3;  // larger than any entry of M H: every component dies
  const auto r = unmix::nmf(M, 2, o);
  REQUIRE(r.events.size() == 4);  // both columns of W, then of H (fitting nothing)
  for (const auto& e : r.events) REQUIRE_THAT(e.what, Catch::Contains("under the penalties and stays zero"));
  REQUIRE(arma::norm(r.W) == 0);
}

TEST_CASE("data whose products would overflow is refused before the run, with the cause", "[faults]") {
  // float32 products of data near 1e30 overflow (the run ended at a NaN
  // factor); double handles it.
  const arma::fmat M = arma::conv_to<arma::fmat>::from(1e30 * test::low_rank<double>(30, 20, 3, 9));
  unmix::Options o;
  o.init = unmix::Init::random;
  REQUIRE_THROWS_WITH(unmix::nmf(M, 3, o), Catch::Contains("the largest value of M must be between") &&
                                               Catch::Contains("such as 1e-30") &&
                                               Catch::Contains("or use float64"));
  const arma::mat Md = arma::conv_to<arma::mat>::from(M);
  REQUIRE(unmix::nmf(Md, 3, o).rel_error.back() < 1e-3);
}
