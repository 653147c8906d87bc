#pragma once
// What differs between the serial and the MPI build: facts, gathers, reductions.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include "problem.hpp"

namespace unmix_nmf {

// ---------------------------------------------------------------- communicator-specific parts

struct CommFacts {
  double seconds = 0, words = 0;
};

// Each communicator offers: this rank's block of M, the owned factor rows
// gathered on rank 0 as F^T (k x rows: each global row one contiguous column,
// which is also the C-order layout of the rows x k matrix), and the MPI time
// and words so far.
#ifdef UNMIX_HAS_MPI
using Comm = unmix::comm::MpiGrid;

unmix::comm::Range block_rows(const Comm& g, const Problem&) { return g.block_rows(); }
unmix::comm::Range block_cols(const Comm& g, const Problem&) { return g.block_cols(); }
CommFacts comm_facts(const Comm& g) { return {g.stats().seconds, g.stats().words()}; }

template <typename eT>
arma::Mat<eT> gather_rows(const Comm& g, const arma::Mat<eT>& F, arma::uword total,
                          unmix::comm::Range mine) {
  const std::size_t p = std::size_t(g.size());
  const arma::uword k = F.n_cols;
  unsigned long long local[2] = {mine.first, mine.count};
  std::vector<unsigned long long> all(2 * p);
  MPI_Gather(local, 2, MPI_UNSIGNED_LONG_LONG, all.data(), 2, MPI_UNSIGNED_LONG_LONG, 0, g.world());
  if (total > arma::uword(std::numeric_limits<int>::max()))
    throw std::runtime_error("cannot gather " + std::to_string(total) +
                             " factor rows: MPI counts are limited to 2^31 - 1 rows");
  // One row of k values is one element, so the counts are row counts.
  MPI_Datatype row;
  MPI_Type_contiguous(int(k), unmix::comm::mpi_type<eT>(), &row);
  MPI_Type_commit(&row);
  std::vector<int> counts(p, 0), displs(p, 0);
  for (std::size_t q = 0; q < p; ++q) {
    displs[q] = int(all[2 * q]);
    counts[q] = int(all[2 * q + 1]);
  }
  const arma::Mat<eT> send = F.t();
  arma::Mat<eT> out;
  if (g.rank() == 0) out.set_size(k, total);
  MPI_Gatherv(send.memptr(), int(mine.count), row, g.rank() == 0 ? out.memptr() : nullptr,
              counts.data(), displs.data(), row, 0, g.world());
  MPI_Type_free(&row);
  return out;
}
template <typename eT>
arma::Mat<eT> gather_W(const Comm& g, const arma::Mat<eT>& W, arma::uword m) {
  return gather_rows(g, W, m, g.W_rows(m));
}
template <typename eT>
arma::Mat<eT> gather_H(const Comm& g, const arma::Mat<eT>& H, arma::uword n) {
  return gather_rows(g, H, n, g.H_rows(n));
}
#else
using Comm = unmix::comm::Serial;

unmix::comm::Range block_rows(const Comm&, const Problem& p) { return {0, p.m}; }
unmix::comm::Range block_cols(const Comm&, const Problem& p) { return {0, p.n}; }
CommFacts comm_facts(const Comm&) { return {}; }
template <typename eT>
arma::Mat<eT> gather_W(const Comm&, const arma::Mat<eT>& W, arma::uword) { return W.t(); }
template <typename eT>
arma::Mat<eT> gather_H(const Comm&, const arma::Mat<eT>& H, arma::uword) { return H.t(); }
#endif

// Reductions to rank 0 (identities on one process).
std::vector<double> reduce_to_root(const std::vector<double>& v, bool max) {
#ifdef UNMIX_HAS_MPI
  std::vector<double> out(v.size());
  MPI_Reduce(v.data(), out.data(), int(v.size()), MPI_DOUBLE, max ? MPI_MAX : MPI_SUM, 0,
             MPI_COMM_WORLD);
  return out;
#else
  (void)max;
  return v;
#endif
}

std::vector<double> gather_to_root(double x, const Team& team) {
  std::vector<double> all(std::size_t(team.size()), x);
#ifdef UNMIX_HAS_MPI
  MPI_Gather(&x, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
#endif
  return all;
}

}  // namespace unmix_nmf
