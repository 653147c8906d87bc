#pragma once
// The MPI communicator of MPI-FAUN (Kannan, Ballard & Park 2018; DESIGN.md
// §2) on a pr x pc process grid. Include only when building with MPI.
#include <mpi.h>

#include <algorithm>
#include <armadillo>
#include <cstdint>
#include <iterator>
#include <utility>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/timer.hpp"
#include "../parallel/pool.hpp"
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
  double halo_words = 0;  // neighbour rows of a graph term (RowExchange)
  double seconds = 0;
  std::uint64_t calls = 0;
  double words() const {
    return all_reduce_words + all_gather_words + reduce_scatter_words + halo_words;
  }
};

// Which rows of a row-distributed factor travel where, so that each rank
// receives the rows owned elsewhere that it asked for (the neighbours of its
// rows in a graph), in the order of owner rank: built once, used every
// iteration.
struct RowExchange {
  std::vector<int> send_counts, send_displs, recv_counts, recv_displs;  // in rows
  std::vector<arma::uword> send_rows;  // this rank's local row indices, packed in order
  std::vector<arma::uword> recv_rows;  // global index of each received row, in order
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
    // The ranks on this node share its cores: each takes its part, unless
    // the launcher already bound it to fewer.
    MPI_Comm node;
    MPI_Comm_split_type(world_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    int on_node = 1;
    MPI_Comm_size(node, &on_node);
    MPI_Comm_free(&node);
    threads_ = std::max(1, std::min(parallel::available_cores(),
                                    int(std::thread::hardware_concurrency()) / std::max(1, on_node)));
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
  // Threads of the core's kernels when Options::threads is 0.
  int default_threads() const { return threads_; }
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

  // Plans the exchange of the global rows `wanted` (none owned here) of W
  // (W_side) or H, each row from its owner. Collective.
  RowExchange row_exchange(bool W_side, const std::vector<arma::uword>& wanted) const {
    const int p = size();
    std::vector<std::pair<arma::uword, int>> starts;  // (first owned row, rank), by row
    for (int r = 0; r < p; ++r) {
      const int i = r / pc_, j = r % pc_;
      const Range own = W_side ? piece(split(m_, pr_, i), pc_, j) : piece(split(n_, pc_, j), pr_, i);
      if (own.count > 0) starts.push_back({own.first, r});
    }
    std::sort(starts.begin(), starts.end());
    std::vector<std::vector<unsigned long long>> ask(p);
    for (arma::uword g : wanted) {
      auto at = std::upper_bound(starts.begin(), starts.end(), std::make_pair(g, p));
      ask[std::prev(at)->second].push_back(g);
    }
    RowExchange x;
    x.recv_counts.resize(p);
    x.recv_displs.resize(p);
    x.send_counts.resize(p);
    x.send_displs.resize(p);
    std::vector<unsigned long long> asked;
    for (int r = 0; r < p; ++r) {
      x.recv_counts[r] = int(ask[r].size());
      x.recv_displs[r] = int(asked.size());
      asked.insert(asked.end(), ask[r].begin(), ask[r].end());
    }
    x.recv_rows.assign(asked.begin(), asked.end());
    MPI_Alltoall(x.recv_counts.data(), 1, MPI_INT, x.send_counts.data(), 1, MPI_INT, world_);
    int total = 0;
    for (int r = 0; r < p; ++r) {
      x.send_displs[r] = total;
      total += x.send_counts[r];
    }
    std::vector<unsigned long long> requested(std::size_t(total) + 1);
    MPI_Alltoallv(asked.data(), x.recv_counts.data(), x.recv_displs.data(), MPI_UNSIGNED_LONG_LONG,
                  requested.data(), x.send_counts.data(), x.send_displs.data(),
                  MPI_UNSIGNED_LONG_LONG, world_);
    const arma::uword first = (W_side ? W_rows(m_) : H_rows(n_)).first;
    for (int t = 0; t < total; ++t) x.send_rows.push_back(arma::uword(requested[t]) - first);
    return x;
  }

  // The rows the plan asks for, from their owners' F, into halo (one row
  // each, in the plan's order). Collective.
  template <typename eT>
  void exchange_rows(const RowExchange& x, const arma::Mat<eT>& F, arma::Mat<eT>& halo) const {
    const Stopwatch t;
    const int k = int(F.n_cols), p = size();
    arma::Mat<eT>& send_ = send_buf<eT>();
    arma::Mat<eT>& recv_ = recv_buf<eT>();
    // Rows travel as columns of the transpose: each one contiguous.
    send_.set_size(F.n_cols, std::max<std::size_t>(x.send_rows.size(), 1));
    for (std::size_t t = 0; t < x.send_rows.size(); ++t) send_.col(t) = F.row(x.send_rows[t]).t();
    recv_.set_size(F.n_cols, std::max<std::size_t>(x.recv_rows.size(), 1));
    std::vector<int> sc(p), sd(p), rc(p), rd(p);
    for (int r = 0; r < p; ++r) {
      sc[r] = x.send_counts[r] * k;
      sd[r] = x.send_displs[r] * k;
      rc[r] = x.recv_counts[r] * k;
      rd[r] = x.recv_displs[r] * k;
    }
    MPI_Alltoallv(send_.memptr(), sc.data(), sd.data(), mpi_type<eT>(), recv_.memptr(), rc.data(),
                  rd.data(), mpi_type<eT>(), world_);
    if (x.recv_rows.empty())
      halo.set_size(0, F.n_cols);
    else
      halo = recv_.cols(0, x.recv_rows.size() - 1).t();
    stats_.halo_words += double(x.send_rows.size()) * k;
    account(t);
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
    if (parts == 1) return F;  // alone in the grid row or column: nothing to gather
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
    if (parts == 1) return R;  // the partial product is already the sum
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
  int rank_ = 0, row_ = 0, col_ = 0, threads_ = 1;
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
