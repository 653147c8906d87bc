// Counts the words each rank moves per iteration, through the communicator,
// and checks them against MPI-FAUN's model: per iteration, for rank (i, j)
// owning w of the m_i rows of W in its grid row and h of the n_j rows of H in
// its grid column,
//   2 k [(m_i - w) + (n_j - h)]          all-gathers and reduce-scatters
// + 2 * 2 (p - 1) / p * k^2               the two Gram all-reduces
// + 2 (p - 1) / p * 3                     the objective's three scalars
// and nothing else: the data never moves.
#include <mpi.h>

#include <cmath>
#include <cstdio>

#include <unmix.hpp>
#include <unmix/comm/mpi_grid.hpp>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int size = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const arma::uword m = 53, n = 41, k = 5;
  int failures = 0;
  for (auto [pr, pc] : {std::pair<int, int>{1, size}, {size, 1}, {size == 4 ? 2 : 1, size == 4 ? 2 : size}}) {
    for (auto solver : {unmix::Solver::mu, unmix::Solver::hals, unmix::Solver::bpp}) {
      unmix::comm::MpiGrid grid(MPI_COMM_WORLD, pr, pc, m, n);
      const auto br = grid.block_rows(), bc = grid.block_cols();
      arma::arma_rng::set_seed(99 + rank);
      const arma::mat block(br.count, bc.count, arma::fill::randu);
      const auto wr = grid.W_rows(m), hr = grid.H_rows(n);
      const arma::mat W0(wr.count, k, arma::fill::randu), H0(hr.count, k, arma::fill::randu);
      unmix::Options o;
      o.solver = solver;
      o.init = unmix::Init::custom;
      o.tol = 0;
      double words[2];
      const int iters[2] = {3, 8};
      for (int t = 0; t < 2; ++t) {
        o.max_iter = iters[t];
        grid.reset_stats();
        unmix::nmf(unmix::data::Dense<double>(block), grid, m, n, k, o, &W0, &H0);
        words[t] = grid.stats().words();
      }
      const double p = size, ar = 2.0 * (p - 1) / p;
      const double per_iter = 2.0 * k * (double(br.count - wr.count) + double(bc.count - hr.count)) +
                              2 * ar * k * k + ar * 3;
      const double measured = (words[1] - words[0]) / (iters[1] - iters[0]);
      if (std::abs(measured - per_iter) > 1e-9 * per_iter + 1e-12) {
        ++failures;
        std::fprintf(stderr, "rank %d grid %dx%d solver %s: %.3f words per iteration, model %.3f\n",
                     rank, pr, pc, unmix::to_string(solver), measured, per_iter);
      }
    }
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::printf("%d ranks: %d failures\n", size, total);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
