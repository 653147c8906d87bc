#include <catch2/catch.hpp>
#include <unmix.hpp>

#include "helpers.hpp"

namespace {

template <typename eT>
auto init_only(const arma::Mat<eT>& M, arma::uword k, unmix::Init init, std::uint64_t seed = 0) {
  unmix::data::Dense<eT> data(M);
  unmix::comm::Serial comm;
  unmix::Products<unmix::data::Dense<eT>, unmix::comm::Serial> products(data, comm, 2);
  unmix::Options o;
  o.init = init;
  o.seed = seed;
  arma::Mat<eT> W, H;
  unmix::init::initialize(products, o, M.n_rows, M.n_cols, k, arma::mean(arma::vectorise(M)), W, H);
  return std::make_pair(W, H);
}

}  // namespace

TEST_CASE("randomized SVD finds the leading singular values", "[init]") {
  const arma::mat M = test::noisy(test::low_rank<double>(120, 90, 6, 21), 0.01, 22);
  unmix::data::Dense<double> data(M);
  unmix::comm::Serial comm;
  unmix::Products<unmix::data::Dense<double>, unmix::comm::Serial> products(data, comm, 2);
  const unmix::init::NaturalOperator<decltype(products)> N{products, false};
  const auto svd = unmix::init::randomized_svd(N, 6, 7, 1, 0, 90, 120, 90);
  const arma::vec s = arma::svd(M);
  REQUIRE(arma::abs(svd.s - s.head(6)).max() <= 1e-8 * s(0));
  // U and V are orthonormal and reproduce M's leading part.
  REQUIRE(arma::abs(svd.U.t() * svd.U - arma::eye(6, 6)).max() < 1e-10);
  REQUIRE(arma::abs(svd.V.t() * svd.V - arma::eye(6, 6)).max() < 1e-10);
}

TEST_CASE("randomized SVD of a matrix of lower rank than k pads with zeros", "[init]") {
  const arma::mat M = test::low_rank<double>(30, 20, 2, 23);
  const auto [W, H] = init_only(M, 4, unmix::Init::nndsvd);
  REQUIRE(W.is_finite());
  REQUIRE(H.is_finite());
  REQUIRE(W.min() >= 0);
  REQUIRE(arma::accu(W.cols(2, 3)) == 0.0);  // nothing to find beyond rank 2
}

TEST_CASE("NNDSVD is non-negative and its variants fill its zeros", "[init]") {
  const arma::mat M = test::noisy(test::low_rank<double>(50, 40, 4, 24), 0.1, 25);
  const auto [W, H] = init_only(M, 4, unmix::Init::nndsvd);
  REQUIRE(W.min() >= 0);
  REQUIRE(arma::accu(W == 0) > 0);  // the signed parts leave zeros
  // The leading component alone is the best rank-1 approximation's magnitude.
  const arma::mat M1 = W.col(0) * H.col(0).t();
  arma::mat U, V;
  arma::vec s;
  arma::svd(U, s, V, M);
  REQUIRE(arma::norm(M1 - s(0) * U.col(0) * V.col(0).t(), "fro") <= 1e-8 * s(0));

  const double mean = arma::mean(arma::vectorise(M)), level = std::sqrt(mean / 4);
  const auto [Wa, Ha] = init_only(M, 4, unmix::Init::nndsvda);
  REQUIRE(arma::accu(Wa == 0) == 0);
  REQUIRE(arma::approx_equal(Wa.elem(arma::find(W == 0)),
                             arma::vec(arma::accu(W == 0), arma::fill::value(level)), "absdiff", 1e-15));
  const auto [War, Har] = init_only(M, 4, unmix::Init::nndsvdar);
  const arma::vec filled = War.elem(arma::find(W == 0));
  REQUIRE(filled.min() >= 0);
  REQUIRE(filled.max() <= 0.01 * level);
  REQUIRE(arma::approx_equal(War.elem(arma::find(W > 0)), W.elem(arma::find(W > 0)), "absdiff", 0.0));
}

TEST_CASE("random initialization is scaled to the data mean", "[init]") {
  const arma::mat M = 1000.0 * test::low_rank<double>(200, 150, 5, 26);
  const auto [W, H] = init_only(M, 5, unmix::Init::random, 3);
  const double ratio = arma::mean(arma::vectorise(W * H.t())) / arma::mean(arma::vectorise(M));
  REQUIRE(ratio > 0.8);
  REQUIRE(ratio < 1.25);
}

TEST_CASE("an all-zero matrix gives zero factors and a zero objective", "[init][driver]") {
  const arma::mat M(12, 9, arma::fill::zeros);
  for (auto init : {unmix::Init::nndsvd, unmix::Init::nndsvda, unmix::Init::random}) {
    for (auto solver : {unmix::Solver::mu, unmix::Solver::hals, unmix::Solver::bpp}) {
      unmix::Options o;
      o.init = init;
      o.solver = solver;
      const auto r = unmix::nmf(M, 3, o);
      REQUIRE(r.W.is_finite());
      REQUIRE(r.H.is_finite());
      REQUIRE(r.objective.back() == 0.0);
      REQUIRE(r.converged);
    }
  }
}

TEST_CASE("every initialization follows the units of the data", "[init]") {
  // Scaling M by c scales both factors by sqrt(c): the start, and so the
  // whole run, does not depend on the units the data is in.
  const arma::mat M = test::noisy(test::low_rank<double>(40, 30, 3, 26), 0.1, 27);
  for (auto init : {unmix::Init::random, unmix::Init::nndsvd, unmix::Init::nndsvda, unmix::Init::nndsvdar}) {
    INFO(unmix::to_string(init));
    const auto [W, H] = init_only(M, 3, init);
    for (double c : {1e-12, 1e12}) {
      const arma::mat Mc = c * M;
      const auto [Wc, Hc] = init_only(Mc, 3, init);
      REQUIRE(arma::approx_equal(Wc / std::sqrt(c), W, "reldiff", 1e-9));
      REQUIRE(arma::approx_equal(Hc / std::sqrt(c), H, "reldiff", 1e-9));
    }
  }
}
