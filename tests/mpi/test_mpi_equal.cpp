// Distributed = serial: on every grid, each solver, dense and sparse, float64
// and float32, the rows of W and H a rank owns equal the serial factors' rows
// from the same seed, to rounding; also with graph smoothness on both factors
// (neighbour rows fetched from other ranks) and a known column of H, and
// with graph smoothness where nothing fixes the scale (the term weighted by
// the other factor's column norms, its ridge summed over the ranks; with and
// without other penalties, the first returned at unit columns). Run under
// mpiexec with any number of ranks.
#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

#include <unmix.hpp>
#include <unmix/comm/mpi_grid.hpp>

namespace {

int failures = 0;

void check(bool ok, const std::string& what, int rank) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "rank %d: FAILED %s\n", rank, what.c_str());
  }
}

template <typename eT>
arma::Mat<eT> test_matrix(arma::uword m, arma::uword n, bool sparse_pattern) {
  arma::arma_rng::set_seed(1234);  // every rank builds the same global matrix
  arma::Mat<eT> W(m, 4, arma::fill::randu), H(n, 4, arma::fill::randu);
  arma::Mat<eT> M = W * H.t() + eT(0.05) * arma::Mat<eT>(m, n, arma::fill::randu);
  if (sparse_pattern) M.elem(arma::find(arma::Mat<eT>(m, n, arma::fill::randu) > eT(0.3))).zeros();
  return M;
}

// A chain through the rows plus random long links, symmetric: neighbours on
// this rank, on the next and on ranks far away.
std::shared_ptr<const arma::sp_mat> test_graph(arma::uword n, unsigned seed) {
  arma::arma_rng::set_seed(seed);
  arma::sp_mat S(n, n);
  for (arma::uword i = 0; i + 1 < n; ++i) S(i, i + 1) = S(i + 1, i) = 1.0;
  for (int t = 0; t < int(n) / 2; ++t) {
    const arma::uword a = arma::randi<arma::uword>(arma::distr_param(0, int(n) - 1));
    const arma::uword b = arma::randi<arma::uword>(arma::distr_param(0, int(n) - 1));
    if (a != b) S(a, b) = S(b, a) = 0.5;
  }
  return std::make_shared<const arma::sp_mat>(S);
}

template <typename eT>
void run_case(int pr, int pc, unmix::Solver solver, unmix::Init init, bool sparse, bool transposed,
              unmix::Loss loss = unmix::Loss::frobenius, bool constrained = false, int free_graph = 0) {
  const arma::uword m = 37, n = 29, k = 4;  // not divisible by the grids
  const arma::Mat<eT> M = test_matrix<eT>(m, n, sparse);
  unmix::Options o;
  o.solver = solver;
  o.init = init;
  o.max_iter = 15;
  o.tol = 0;
  o.seed = 7;
  o.transposed = transposed;
  o.W.l1 = 0.01;
  o.H.l2 = 0.1;
  o.loss = loss;
  arma::mat known;
  if (free_graph > 0) {  // 1: with l1 and l2 as above, 2: the graph terms alone
    o.W.graph = test_graph(m, 5);
    o.W.smooth = 0.3;
    o.H.graph = test_graph(n, 6);
    o.H.smooth = 0.2;
    if (free_graph == 2) o.W.l1 = o.H.l2 = 0;
  }
  if (constrained) {
    o.W.graph = test_graph(m, 5);
    o.W.smooth = 0.3;
    o.H.graph = test_graph(n, 6);
    o.H.smooth = 0.2;
    o.H.fixed_cols = {2};
    arma::arma_rng::set_seed(8);
    known = arma::randu(n, 1);
    o.H.fixed_values = known;
  }
  const auto serial = unmix::nmf(M, k, o);

  unmix::comm::MpiGrid grid(MPI_COMM_WORLD, pr, pc, m, n);
  if (constrained) {  // each rank gives the known values of its own rows
    const auto hr = grid.H_rows(n);
    o.H.fixed_values = hr.count ? arma::mat(known.rows(hr.first, hr.first + hr.count - 1))
                                : arma::mat(0, 1);
  }
  const auto rows = grid.block_rows(), cols = grid.block_cols();
  const arma::Mat<eT> block = M.submat(rows.first, cols.first, rows.first + rows.count - 1,
                                       cols.first + cols.count - 1);
  unmix::Result<eT> dist;
  if (sparse) {
    const arma::SpMat<eT> S(block);
    dist = unmix::nmf(unmix::data::Sparse<eT>(S), grid, m, n, k, o, nullptr, nullptr);
  } else {
    dist = unmix::nmf(unmix::data::Dense<eT>(block), grid, m, n, k, o, nullptr, nullptr);
  }
  const auto wr = grid.W_rows(m), hr = grid.H_rows(n);
  const arma::Mat<eT> W_ref = serial.W.rows(wr.first, wr.first + wr.count - 1);
  const arma::Mat<eT> H_ref = serial.H.rows(hr.first, hr.first + hr.count - 1);
  const double tol = std::is_same_v<eT, float> ? 1e-3 : 1e-9;
  const std::string what = std::string("grid ") + std::to_string(pr) + "x" + std::to_string(pc) +
                           " solver " + unmix::to_string(solver) + " init " + unmix::to_string(init) +
                           (sparse ? " sparse" : " dense") + (transposed ? " transposed" : "") +
                           (loss == unmix::Loss::kl ? " kl" : "") +
                           (constrained ? " graph+fixed" : "") +
                           (free_graph ? " free-scale graph " + std::to_string(free_graph) : "") +
                           (std::is_same_v<eT, float> ? " float32" : " float64");
  check(dist.n_iter == serial.n_iter, what + ": iterations", grid.rank());
  check(arma::abs(dist.W - W_ref).max() <= tol * arma::abs(serial.W).max(), what + ": W", grid.rank());
  check(arma::abs(dist.H - H_ref).max() <= tol * arma::abs(serial.H).max(), what + ": H", grid.rank());
  check(std::abs(dist.objective.back() - serial.objective.back()) <= tol * serial.objective.front(),
        what + ": objective", grid.rank());
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int size = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<std::pair<int, int>> grids = {{1, size}, {size, 1}};
  if (size == 4) grids.push_back({2, 2});
  int cases = 0;
  for (auto [pr, pc] : grids) {
    for (auto solver : {unmix::Solver::mu, unmix::Solver::hals, unmix::Solver::bpp, unmix::Solver::admm}) {
      for (bool sparse : {false, true}) {
        run_case<double>(pr, pc, solver, unmix::Init::nndsvda, sparse, false);
        run_case<float>(pr, pc, solver, unmix::Init::random, sparse, true);
        cases += 2;
        run_case<double>(pr, pc, solver, unmix::Init::nndsvda, sparse, sparse,
                         unmix::Loss::frobenius, true);
        run_case<double>(pr, pc, solver, unmix::Init::nndsvda, sparse, !sparse,
                         unmix::Loss::frobenius, false, 1);
        run_case<double>(pr, pc, solver, unmix::Init::random, sparse, sparse,
                         unmix::Loss::frobenius, false, 2);
        cases += 3;
        if (solver == unmix::Solver::mu) {
          run_case<double>(pr, pc, solver, unmix::Init::nndsvda, sparse, true, unmix::Loss::kl);
          run_case<double>(pr, pc, solver, unmix::Init::nndsvda, sparse, false, unmix::Loss::kl, true);
          run_case<double>(pr, pc, solver, unmix::Init::nndsvda, sparse, sparse, unmix::Loss::kl, false, 2);
          cases += 3;
        }
      }
    }
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("%d ranks: %d cases x %zu grids, %d failures\n", size, cases / int(grids.size()),
                grids.size(), total);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
