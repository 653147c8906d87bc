#pragma once
// --watchdog SECONDS. The ranks wait for each other in every collective, so
// one that stops responding (SIGSTOP, a frozen or lost node) leaves the
// others waiting forever, at 100 % CPU in Open MPI's busy polling. A thread
// on every rank exchanges heartbeats with rank 0 a few times a second; a rank
// not heard from for SECONDS is named and the job ended with MPI_Abort.
// The threads watch that the processes are alive, not that the fit
// progresses, so an iteration longer than SECONDS is no fault.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "team.hpp"

namespace unmix_nmf {

#ifdef UNMIX_HAS_MPI
class Watchdog {
 public:
  // Collective. Does nothing unless seconds > 0 and there are several ranks.
  Watchdog(double seconds, const Team& team) : seconds_(seconds), team_(team) {
    if (!(seconds > 0) || team.size() == 1) return;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);  // its messages never meet the fit's
    sent_.assign(std::size_t(team.size()), 0);
    received_.assign(std::size_t(team.size()), 0);
    thread_ = std::thread([this] { watch(); });
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Collective, like every way out of run(): the ranks stop their threads
  // together (a rank whose heartbeats ended early would look silent to
  // rank 0), then receive every heartbeat still in flight, so that none is
  // pending at MPI_Finalize.
  ~Watchdog() {
    if (!thread_.joinable()) return;
    MPI_Barrier(MPI_COMM_WORLD);
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    std::vector<int> expected(sent_.size());
    MPI_Alltoall(sent_.data(), 1, MPI_INT, expected.data(), 1, MPI_INT, comm_);
    for (std::size_t r = 0; r < expected.size(); ++r)
      for (; received_[r] < expected[r]; ++received_[r]) {
        int beat = 0;
        MPI_Recv(&beat, 1, MPI_INT, int(r), tag, comm_, MPI_STATUS_IGNORE);
      }
    MPI_Comm_free(&comm_);
  }

  // The thread calls MPI while the main thread is inside a collective.
  static void check_supported() {
    int provided = MPI_THREAD_SINGLE;
    MPI_Query_thread(&provided);
    if (provided < MPI_THREAD_MULTIPLE)
      throw UsageError("--watchdog needs an MPI library that supports MPI_THREAD_MULTIPLE; "
                       "this one does not");
  }

 private:
  static constexpr int tag = 1;

  void watch() {
    using Clock = std::chrono::steady_clock;
    const std::chrono::duration<double> limit(seconds_), period(std::clamp(seconds_ / 8, 0.01, 0.5));
    const int p = team_.size(), me = team_.rank();
    std::vector<int> peers;  // rank 0 hears from everyone, everyone from rank 0
    for (int r = 0; r < p; ++r)
      if (r != me && (me == 0 || r == 0)) peers.push_back(r);
    std::vector<Clock::time_point> heard(std::size_t(p), Clock::now());
    Clock::time_point turn = Clock::now();
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
      lock.unlock();
      const Clock::time_point now = Clock::now();
      // This thread itself did not run for a while (the whole job was
      // suspended, the machine overloaded): the others' silence over that
      // time says nothing about them.
      if (now - turn > limit / 2) std::fill(heard.begin(), heard.end(), now);
      turn = now;
      for (const int r : peers) {
        MPI_Request request;
        MPI_Isend(&beat_, 1, MPI_INT, r, tag, comm_, &request);
        MPI_Request_free(&request);
        ++sent_[std::size_t(r)];
      }
      int waiting = 0;
      MPI_Status status;
      while (MPI_Iprobe(MPI_ANY_SOURCE, tag, comm_, &waiting, &status), waiting) {
        int beat = 0;
        MPI_Recv(&beat, 1, MPI_INT, status.MPI_SOURCE, tag, comm_, MPI_STATUS_IGNORE);
        ++received_[std::size_t(status.MPI_SOURCE)];
        heard[std::size_t(status.MPI_SOURCE)] = now;
      }
      std::vector<int> silent;
      for (const int r : peers)
        if (now - heard[std::size_t(r)] > limit) silent.push_back(r);
      if (!silent.empty()) abort_job(silent);
      lock.lock();
    }
  }

  [[noreturn]] void abort_job(const std::vector<int>& silent) const {
    std::string who = silent.size() == 1 ? "rank " : "ranks ";
    for (std::size_t i = 0; i < silent.size(); ++i)
      who += (i ? ", " : "") + std::to_string(silent[i]);
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", seconds_);
    std::string message = who + (silent.size() == 1 ? " has" : " have") + " not responded for " +
                          seconds + " s (stopped, or its node is down); ending the job (--watchdog " +
                          seconds + ")";
    if (!team_.root()) message += " [seen from rank " + std::to_string(team_.rank()) + "]";
    std::fprintf(stderr, "%s: error: %s\n", prog, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_failed);
    std::abort();  // MPI_Abort does not return
  }

  double seconds_;
  Team team_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<int> sent_, received_;  // heartbeats per peer, counted for the end
  static constexpr int beat_ = 1;     // what is sent; static, so it outlives every send
};
#else
// One process has nobody to wait for.
class Watchdog {
 public:
  Watchdog(double, const Team&) {}
  static void check_supported() {}
};
#endif

}  // namespace unmix_nmf
