// Times the BPP rule alone on the W half-step of a factorization in progress,
// next to X H, one of the two data products of an iteration (unmix-nmf's
// "products" timing is both): the yardstick the rule is held to.
//
//   c++ -O3 -DNDEBUG -DARMA_DONT_USE_WRAPPER -DARMA_WARN_LEVEL=0 -I cpp/include
//       bench/bench_nnls.cpp -o /tmp/bench_nnls -lopenblas
//   /tmp/bench_nnls 490000 56 6            # X-ray diffraction: many rows, small k
//   /tmp/bench_nnls 16384 1535 64 10       # ToF-SIMS: k above the data's rank
//   /tmp/bench_nnls 490000 56 6 6 simplex  # rows of W on the simplex
//
// Arguments: rows, columns, k, rank of the data (default k), "simplex".
// Prints the fastest of 5 timings of each, in ms.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unmix/rules/bpp.hpp>

namespace {

// The fastest of 5 timings of f, in ms, each after an untimed setup().
template <typename Setup, typename F>
double best_ms(Setup&& setup, F&& f) {
  double best = 1e300;
  for (int r = 0; r < 5; ++r) {
    setup();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s ROWS COLS K [RANK] [simplex]\n", argv[0]);
    return 2;
  }
  const arma::uword m = std::strtoul(argv[1], nullptr, 10), n = std::strtoul(argv[2], nullptr, 10),
                    k = std::strtoul(argv[3], nullptr, 10);
  const arma::uword rank = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : k;
  const bool simplex = argc > 5 && std::strcmp(argv[5], "simplex") == 0;
  using unmix::Feasible;
  Feasible<double> feasible = Feasible<double>::nonnegative(k);
  feasible.simplex = simplex;

  arma::arma_rng::set_seed(1);
  arma::mat X = arma::mat(m, rank, arma::fill::randu) * arma::mat(rank, n, arma::fill::randu);
  X += 0.01 * arma::mean(arma::vectorise(X)) * arma::mat(m, n, arma::fill::randu);
  arma::mat W(m, k, arma::fill::randu), H(n, k, arma::fill::randu);
  feasible.project(W);

  // A few alternating iterations, so that W's warm start is a realistic one.
  unmix::rules::BPP<double> rule_W, rule_H;
  const Feasible<double> nonneg = Feasible<double>::nonnegative(k);
  for (int it = 0; it < 5; ++it) {
    rule_H.update(W.t() * W, X.t() * W, H, nonneg);
    rule_W.update(H.t() * H, X * H, W, feasible);
  }
  rule_H.update(W.t() * W, X.t() * W, H, nonneg);

  const arma::mat G = H.t() * H;
  arma::mat R;
  const double product_ms = best_ms([] {}, [&] { R = X * H; });
  arma::mat Wc;
  unmix::rules::BPP<double> rule;
  const double update_ms = best_ms([&] { Wc = W; }, [&] { rule.update(G, R, Wc, feasible); });
  std::printf("%llu x %llu, k = %llu, rank %llu%s: update %.1f ms, product X H %.1f ms\n",
              static_cast<unsigned long long>(m), static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(k), static_cast<unsigned long long>(rank),
              simplex ? ", simplex" : "", update_ms, product_ms);
  return 0;
}
