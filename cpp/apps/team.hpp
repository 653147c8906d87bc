#pragma once
// Exit codes, failures, and the ranks agreeing on them.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unmix.hpp>
#include <unmix/comm/grid_shape.hpp>
#include <unmix/io/atomic_file.hpp>
#include <unmix/io/generate.hpp>
#include <unmix/io/mtx.hpp>
#include <unmix/io/npy.hpp>
#include <unmix/regularize/grid_graph.hpp>

#ifdef UNMIX_HAS_MPI
#include <mpi.h>

#include <unmix/comm/mpi_grid.hpp>
#endif

namespace unmix_nmf {

constexpr const char* prog = "unmix-nmf";
constexpr int exit_ok = 0;
constexpr int exit_failed = 1;  // the run itself failed (numerics, writing, memory)
constexpr int exit_usage = 2;   // bad command line or bad input
constexpr double inf = std::numeric_limits<double>::infinity();
// How long a rank that failed alone waits for the others before aborting the
// job. Failures that every rank sees (bad input, non-finite objective) are
// agreed on within moments; only a failure of one rank inside a collective
// phase (out of memory, say) leaves the others waiting, and then the job is
// ended with MPI_Abort instead of hanging.
constexpr double lone_failure_timeout = 5.0;

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// ---------------------------------------------------------------- status

struct Status {
  bool ok = true;
  int code = exit_ok;
  std::string message;
  bool usage = false;  // add the pointer to --help
};

Status failure(int code, const std::string& message, bool usage = false) {
  return Status{false, code, message, usage};
}

// Library messages start with the function that threw ("unmix::io::read_npy:
// "); on the command line the program name says enough.
std::string strip_origin(std::string m) {
  if (m.rfind("unmix", 0) == 0) {
    const std::size_t colon = m.find(": ");
    if (colon != std::string::npos && m.find(' ') > colon) m = m.substr(colon + 2);
  }
  return m;
}

// ---------------------------------------------------------------- the team of ranks

class Team {
 public:
#ifdef UNMIX_HAS_MPI
  Team() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
#endif
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  void barrier() const {
#ifdef UNMIX_HAS_MPI
    MPI_Barrier(MPI_COMM_WORLD);
#endif
  }
  // The largest of the ranks' values, on every rank.
  int max(int x) const {
#ifdef UNMIX_HAS_MPI
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#endif
    return x;
  }

  // The status of the lowest failing rank, on every rank; rank 0 prints its
  // message. A rank that failed on its own gives up after `timeout` seconds
  // and aborts the job rather than wait for ranks stuck elsewhere.
  Status agree(const Status& local, double timeout = inf) const {
    Status s = local;
#ifdef UNMIX_HAS_MPI
    int mine = local.ok ? size_ : rank_, lowest = size_;
    MPI_Request req;
    MPI_Iallreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &req);
    if (local.ok || !std::isfinite(timeout)) {
      MPI_Wait(&req, MPI_STATUS_IGNORE);
    } else {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
      int done = 0;
      while (MPI_Test(&req, &done, MPI_STATUS_IGNORE), !done) {
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "%s: error on rank %d: %s\n%s: the other ranks did not respond "
                               "within %.0f s; aborting the job\n",
                       prog, rank_, local.message.c_str(), prog, timeout);
          std::fflush(stderr);
          MPI_Abort(MPI_COMM_WORLD, local.code);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    if (lowest == size_) return {};
    int code = local.code, usage = local.usage ? 1 : 0;
    unsigned long long len = local.message.size();
    MPI_Bcast(&code, 1, MPI_INT, lowest, MPI_COMM_WORLD);
    MPI_Bcast(&usage, 1, MPI_INT, lowest, MPI_COMM_WORLD);
    MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, lowest, MPI_COMM_WORLD);
    std::string text(std::size_t(len), ' ');
    if (rank_ == lowest) text = local.message;
    MPI_Bcast(text.data(), int(len), MPI_CHAR, lowest, MPI_COMM_WORLD);
    s = failure(code, text, usage != 0);
    if (size_ > 1 && lowest != 0) s.message += " (on rank " + std::to_string(lowest) + ")";
#else
    (void)timeout;  // a single process has nobody to wait for
#endif
    if (!s.ok && root()) {
      std::fprintf(stderr, "%s: error: %s\n", prog, s.message.c_str());
      if (s.usage) std::fprintf(stderr, "Try '%s --help' for the options.\n", prog);
      std::fflush(stderr);
    }
    return s;
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace unmix_nmf
