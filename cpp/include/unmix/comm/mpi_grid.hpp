#pragma once
// The MPI communicator of MPI-FAUN (Kannan, Ballard & Park 2018; DESIGN.md
// §2) on a pr x pc process grid. Include only when building with MPI.
#include <mpi.h>

#include <armadillo>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/timer.hpp"
#include "split.hpp"

namespace unmix::comm {

template <typename eT> MPI_Datatype mpi_type();
template <> inline MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <> inline MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }

// Words each rank sent and seconds it spent in each kind of collective. The
// counts follow the bandwidth-optimal cost of each collective (what MPI-FAUN's
// analysis charges), computed from the sizes actually moved.
struct CommStats {
  double all_reduce_words = 0, all_gather_words = 0, reduce_scatter_words = 0;
  double seconds = 0;
  std::uint64_t calls = 0;
  double words() const { return all_reduce_words + all_gather_words + reduce_scatter_words; }
};

// Rank r = i * pc + j sits at grid row i, column j, and holds the block of M
// with the i-th of pr row ranges and the j-th of pc column ranges. It owns
// the j-th of pc pieces of W's rows in range i and the i-th of pr pieces of
// H's rows in range j, so every factor row has exactly one owner.
//
// The grid takes an existing communicator (duplicated, so our messages never
// mix with the caller's) and never calls MPI_Init, MPI_Finalize or MPI_Abort.
class MpiGrid {
 public:
  static constexpr bool distributed = true;

  MpiGrid(MPI_Comm comm, int pr, int pc, arma::uword m, arma::uword n) : pr_(pr), pc_(pc), m_(m), n_(n) {
    int size = 0;
    MPI_Comm_size(comm, &size);
    if (pr < 1 || pc < 1 || pr * pc != size)
      throw std::invalid_argument("unmix::MpiGrid: grid must be pr x pc with pr * pc equal to the "
                                  "number of ranks (" + std::to_string(size) + "), got " +
                                  std::to_string(pr) + "x" + std::to_string(pc));
    if (arma::uword(pr) > m || arma::uword(pc) > n)
      throw std::invalid_argument("unmix::MpiGrid: grid " + std::to_string(pr) + "x" +
                                  std::to_string(pc) + " has more rows or columns than the matrix (" +
                                  std::to_string(m) + " x " + std::to_string(n) + ")");
    MPI_Comm_dup(comm, &world_);
    MPI_Comm_rank(world_, &rank_);
    row_ = rank_ / pc;
    col_ = rank_ % pc;
    MPI_Comm_split(world_, /*color=*/row_, /*key=*/col_, &row_comm_);  // same grid row
    MPI_Comm_split(world_, /*color=*/col_, /*key=*/row_, &col_comm_);  // same grid column
  }
  ~MpiGrid() {
    MPI_Comm_free(&row_comm_);
    MPI_Comm_free(&col_comm_);
    MPI_Comm_free(&world_);
  }
  MpiGrid(const MpiGrid&) = delete;
  MpiGrid& operator=(const MpiGrid&) = delete;

  int rank() const { return rank_; }
  int size() const { return pr_ * pc_; }
  int grid_rows() const { return pr_; }
  int grid_cols() const { return pc_; }
  int row() const { return row_; }
  int col() const { return col_; }
  MPI_Comm world() const { return world_; }

  // This rank's block of M.
  Range block_rows() const { return split(m_, pr_, row_); }
  Range block_cols() const { return split(n_, pc_, col_); }
  // The factor rows this rank owns (global index of the first, count).
  Range W_rows(arma::uword m) const { return piece(split(m, pr_, row_), pc_, col_); }
  Range H_rows(arma::uword n) const { return piece(split(n, pc_, col_), pr_, row_); }

  template <typename eT>
  void all_reduce(arma::Mat<eT>& x) const {
    const Stopwatch t;
    MPI_Allreduce(MPI_IN_PLACE, x.memptr(), int(x.n_elem), mpi_type<eT>(), MPI_SUM, world_);
    stats_.all_reduce_words += 2.0 * (size() - 1) / size() * double(x.n_elem);
    account(t);
  }
  double all_reduce(double x) const {
    arma::Mat<double> v(1, 1, arma::fill::value(x));
    all_reduce(v);
    return v[0];
  }
  double min(double x) const {
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_MIN, world_);
    return x;
  }
  bool any(bool x) const {
    int v = x ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, world_);
    return v != 0;
  }

  // The H rows of block column j, gathered from the pr ranks of grid column j.
  template <typename eT>
  const arma::Mat<eT>& gather_H(const arma::Mat<eT>& H, arma::Mat<eT>& buf) const {
    return all_gather(H, col_comm_, split(n_, pc_, col_), pr_, buf);
  }
  // The W rows of block row i, gathered from the pc ranks of grid row i.
  template <typename eT>
  const arma::Mat<eT>& gather_W(const arma::Mat<eT>& W, arma::Mat<eT>& buf) const {
    return all_gather(W, row_comm_, split(m_, pr_, row_), pc_, buf);
  }
  // Sum of the grid row's partial products M_ij H_j; keep the owned W rows.
  template <typename eT>
  arma::Mat<eT>& scatter_W(arma::Mat<eT>& R, arma::Mat<eT>& buf) const {
    return reduce_scatter(R, row_comm_, split(m_, pr_, row_), pc_, buf);
  }
  // Sum of the grid column's partial products M_ij^T W_i; keep the owned H rows.
  template <typename eT>
  arma::Mat<eT>& scatter_H(arma::Mat<eT>& R, arma::Mat<eT>& buf) const {
    return reduce_scatter(R, col_comm_, split(n_, pc_, col_), pr_, buf);
  }

  const CommStats& stats() const { return stats_; }
  void reset_stats() const { stats_ = CommStats{}; }

 private:
  static Range piece(Range r, int parts, int index) {
    const Range p = split(r.count, parts, index);
    return {r.first + p.first, p.count};
  }

  // Rows travel as columns of the transpose, so every rank's rows are one
  // contiguous run of the message.
  template <typename eT>
  const arma::Mat<eT>& all_gather(const arma::Mat<eT>& F, MPI_Comm comm, Range range, int parts,
                                  arma::Mat<eT>& buf) const {
    const Stopwatch t;
    const arma::uword k = F.n_cols;
    std::vector<int> counts(parts), displs(parts);
    for (int q = 0; q < parts; ++q) {
      const Range p = split(range.count, parts, q);
      counts[q] = int(p.count * k);
      displs[q] = int(p.first * k);
    }
    arma::Mat<eT>& send_ = send_buf<eT>();
    arma::Mat<eT>& recv_ = recv_buf<eT>();
    send_ = F.t();
    recv_.set_size(k, range.count);
    MPI_Allgatherv(send_.memptr(), int(send_.n_elem), mpi_type<eT>(), recv_.memptr(),
                   counts.data(), displs.data(), mpi_type<eT>(), comm);
    buf = recv_.t();
    stats_.all_gather_words += double(recv_.n_elem - send_.n_elem);
    account(t);
    return buf;
  }

  template <typename eT>
  arma::Mat<eT>& reduce_scatter(arma::Mat<eT>& R, MPI_Comm comm, Range range, int parts,
                                arma::Mat<eT>& buf) const {
    const Stopwatch t;
    const arma::uword k = R.n_cols;
    std::vector<int> counts(parts);
    for (int q = 0; q < parts; ++q) counts[q] = int(split(range.count, parts, q).count * k);
    arma::Mat<eT>& send_ = send_buf<eT>();
    arma::Mat<eT>& recv_ = recv_buf<eT>();
    send_ = R.t();
    int me = 0;
    MPI_Comm_rank(comm, &me);
    recv_.set_size(k, arma::uword(counts[me]) / std::max<arma::uword>(k, 1));
    MPI_Reduce_scatter(send_.memptr(), recv_.memptr(), counts.data(), mpi_type<eT>(), MPI_SUM, comm);
    buf = recv_.t();
    stats_.reduce_scatter_words += double(send_.n_elem - recv_.n_elem);
    account(t);
    return buf;
  }

  void account(const Stopwatch& t) const {
    stats_.seconds += t.seconds();
    ++stats_.calls;
  }

  int pr_, pc_;
  arma::uword m_, n_;
  int rank_ = 0, row_ = 0, col_ = 0;
  MPI_Comm world_ = MPI_COMM_NULL, row_comm_ = MPI_COMM_NULL, col_comm_ = MPI_COMM_NULL;
  mutable CommStats stats_;
  // Packing buffers, reused across iterations.
  mutable arma::Mat<double> send64_, recv64_;
  mutable arma::Mat<float> send32_, recv32_;
  template <typename eT>
  arma::Mat<eT>& send_buf() const {
    if constexpr (std::is_same_v<eT, double>) return send64_; else return send32_;
  }
  template <typename eT>
  arma::Mat<eT>& recv_buf() const {
    if constexpr (std::is_same_v<eT, double>) return recv64_; else return recv32_;
  }
};

}  // namespace unmix::comm
