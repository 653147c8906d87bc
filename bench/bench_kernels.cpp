// The two data products of an iteration, unmix's kernels against the BLAS
// the core links (gemm through Armadillo), next to the floor measured in the
// same run: reading M at the memory's bandwidth, or 2 m n k flops at the
// machine's square-GEMM rate, whichever is larger.
//
//   c++ -O3 -DNDEBUG -DARMA_DONT_USE_WRAPPER -DARMA_WARN_LEVEL=0 -I cpp/include
//       bench/bench_kernels.cpp -o /tmp/bench_kernels -lopenblas -pthread
//   /tmp/bench_kernels                      # the benchmark's dense shapes, float64 and float32
//   /tmp/bench_kernels 1535 16384 4 double  # one shape: M rows, columns, k, type
//
// M is m x n column-major, as the core sees it (a C-ordered numpy X of
// shape (P, C) is M = X^T with m = C). Per product: the fastest of 7 runs in
// ms, its read rate of M in GB/s and its ratio to the floor; for the
// kernels with 1 thread and with every core, for BLAS with every core.
// UNMIX_SIMD=avx2 or baseline times the other instruction sets.
#include <algorithm>
#include <armadillo>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unmix/kernels/dense_products.hpp>

extern "C" void openblas_set_num_threads(int);

namespace {

template <typename F>
double best_ms(F&& f, int runs = 7) {
  f();
  double best = 1e300;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

// The fastest read of M: a sum over it, in parallel over column ranges.
template <typename T>
double read_ms(const arma::Mat<T>& M, int threads) {
  volatile double sink = 0;
  return best_ms([&] {
    const std::size_t parts = std::size_t(threads) * 4;
    std::vector<double> s(parts, 0.0);
    const unmix::parallel::Split split{M.n_elem, parts};
    unmix::parallel::for_each_task(parts, threads, [&](std::size_t p) {
      const T* x = M.memptr();
      T a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
      std::size_t i = split.begin(p);
      const std::size_t e = split.end(p);
      for (; i + 8 <= e; i += 8) {
        a0 += x[i]; a1 += x[i + 1]; a2 += x[i + 2]; a3 += x[i + 3];
        a4 += x[i + 4]; a5 += x[i + 5]; a6 += x[i + 6]; a7 += x[i + 7];
      }
      for (; i < e; ++i) a0 += x[i];
      s[p] = double(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
    });
    sink = sink + s[0];
  });
}

template <typename T>
double gemm_gflops() {
  arma::Mat<T> a(2000, 2000, arma::fill::randu), b(2000, 2000, arma::fill::randu), c;
  const double ms = best_ms([&] { c = a * b; }, 3);
  return 2.0 * 2000.0 * 2000.0 * 2000.0 / (ms * 1e6);
}

template <typename T>
void run(std::size_t m, std::size_t n, std::size_t k, int cores, double gflops, const char* type) {
  arma::arma_rng::set_seed(1);
  arma::Mat<T> M(m, n, arma::fill::randu), A(m, k, arma::fill::randu), B(n, k, arma::fill::randu);
  arma::Mat<T> Y(n, k), Z(m, k), Yb, Zb;
  const double gb = double(M.n_elem) * sizeof(T) / 1e9;
  const double read = read_ms(M, cores);
  const double floor = std::max(read, 2.0 * double(m) * double(n) * double(k) / (gflops * 1e6));
  using unmix::kernels::times;
  using unmix::kernels::trans_times;
  auto ours_t = [&](int th) { trans_times(M.memptr(), m, n, m, A.memptr(), m, k, Y.memptr(), n, th); };
  auto ours_n = [&](int th) { times(M.memptr(), m, n, m, B.memptr(), n, k, Z.memptr(), m, th); };
  openblas_set_num_threads(cores);
  const double blas_t = best_ms([&] { Yb = M.t() * A; });
  const double blas_n = best_ms([&] { Zb = M * B; });
  const double t1 = best_ms([&] { ours_t(1); }), tp = best_ms([&] { ours_t(cores); });
  const double n1 = best_ms([&] { ours_n(1); }), np = best_ms([&] { ours_n(cores); });
  const double err_t = arma::abs(Y - Yb).max() / arma::abs(Yb).max();
  const double err_n = arma::abs(Z - Zb).max() / arma::abs(Zb).max();
  std::printf("%6zu x %-6zu k %-3zu %-6s floor %6.2f ms (read %5.1f GB/s) | M^T A: ours %6.2f / %6.2f ms "
              "(%5.2fx floor, %4.1f GB/s) blas %6.2f (%5.2fx) err %.0e | M B: ours %6.2f / %6.2f ms "
              "(%5.2fx floor, %4.1f GB/s) blas %6.2f (%5.2fx) err %.0e\n",
              m, n, k, type, floor, gb / read * 1e3, t1, tp, tp / floor, gb / tp * 1e3, blas_t,
              blas_t / floor, err_t, n1, np, np / floor, gb / np * 1e3, blas_n, blas_n / floor, err_n);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int cores = unmix::parallel::available_cores();
  openblas_set_num_threads(cores);
  const double gf64 = gemm_gflops<double>(), gf32 = gemm_gflops<float>();
  std::printf("# %d cores, simd %s, square GEMM %.0f GFLOP/s (float64), %.0f (float32)\n", cores,
              unmix::kernels::isa_name(unmix::kernels::isa()), gf64, gf32);
  if (argc >= 4) {
    const std::size_t m = std::strtoul(argv[1], nullptr, 10), n = std::strtoul(argv[2], nullptr, 10),
                      k = std::strtoul(argv[3], nullptr, 10);
    if (argc > 4 && std::strcmp(argv[4], "float") == 0)
      run<float>(m, n, k, cores, gf32, "float");
    else
      run<double>(m, n, k, cores, gf64, "double");
    return 0;
  }
  // The dense cases of bench/bench_perf.py, both orientations.
  const std::size_t shapes[][3] = {{1535, 16384, 4}, {16384, 1535, 4}, {1535, 16384, 16},
                                   {16384, 1535, 16}, {1535, 16384, 64}, {16384, 1535, 64},
                                   {56, 490000, 6},   {490000, 56, 6},   {8000, 8000, 20}};
  for (const auto& s : shapes) run<double>(s[0], s[1], s[2], cores, gf64, "double");
  for (const auto& s : shapes) run<float>(s[0], s[1], s[2], cores, gf32, "float");
}
