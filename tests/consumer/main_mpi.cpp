// The distributed driver through the installed package, on whatever ranks
// it is started with.
#include <mpi.h>

#include <cstdio>
#include <unmix.hpp>
#include <unmix/comm/mpi_grid.hpp>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int size = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const arma::uword m = 40, n = 30;
  arma::arma_rng::set_seed(1);
  const arma::mat M = arma::mat(m, 3, arma::fill::randu) * arma::mat(n, 3, arma::fill::randu).t();
  int status = 0;
  {
    unmix::comm::MpiGrid grid(MPI_COMM_WORLD, size, 1, m, n);
    const auto b = grid.block_rows();
    const arma::mat block = M.rows(b.first, b.first + b.count - 1);
    unmix::Options opt;
    opt.max_iter = 200;
    const auto r = unmix::nmf(unmix::data::Dense<double>(block), grid, m, n, 3, opt, nullptr, nullptr);
    if (rank == 0) std::printf("%d ranks: relative error %.2e\n", size, r.rel_error.back());
    status = r.rel_error.back() < 1e-3 ? 0 : 1;
  }
  MPI_Finalize();
  return status;
}
