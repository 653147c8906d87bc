#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#include <unistd.h>
#endif

namespace unmix::parallel {

// How many cores this process may run on (its affinity mask, which
// taskset, mpirun --bind-to and batch schedulers set), at least 1.
inline int available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// The threads that run the core's own kernels (the data products, the
// row-wise updates), kept for the life of the process so that a half-step
// does not pay for starting threads. The caller of run() works too; the
// other threads sleep between jobs (after a short spin, so that the several
// jobs of one half-step do not each pay a wake-up).
//
// run() never depends on which thread does a task: kernels that reduce
// over tasks fix the tasks from the problem's size alone, so a result is
// the same for any number of threads. A second caller while a job runs
// (another fit in another thread, or a task that calls run) does its tasks
// itself, in order.
class Pool {
 public:
  static Pool& instance() {
    // A child process after fork() has none of the parent's threads: it
    // gets a pool of its own (the parent's is left alone, not destroyed).
    static std::atomic<Pool*> pool{nullptr};
    static std::mutex creating;
    Pool* p = pool.load(std::memory_order_acquire);
    if (p == nullptr || p->pid_ != current_pid()) {
      std::lock_guard<std::mutex> lock(creating);
      p = pool.load(std::memory_order_relaxed);
      if (p == nullptr || p->pid_ != current_pid()) {
        p = new Pool();  // never deleted: workers may outlive static destruction order
        pool.store(p, std::memory_order_release);
      }
    }
    return *p;
  }

  // Calls fn(t, slot) for every t in [0, n_tasks) on up to `threads`
  // threads, slot < threads naming the thread (for per-thread scratch);
  // returns when all are done. The first exception a task throws is
  // rethrown here (tasks not yet started are then skipped).
  template <typename F>
  void run(std::size_t n_tasks, int threads, F&& fn) {
    threads = std::max(1, std::min<int>(threads, int(std::min<std::size_t>(n_tasks, 1024))));
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (threads == 1 || !busy.owns_lock()) {
      for (std::size_t t = 0; t < n_tasks; ++t) fn(t, 0);
      return;
    }
    grow(threads - 1);
    auto call = [](void* f, std::size_t t, int slot) {
      (*static_cast<std::remove_reference_t<F>*>(f))(t, slot);
    };
    job_.call = call;
    job_.fn = &fn;
    job_.n_tasks = n_tasks;
    job_.next.store(0, std::memory_order_relaxed);
    job_.error = nullptr;
    remaining_.store(threads - 1, std::memory_order_relaxed);
    // Only the helpers this job uses get a ticket: a helper then cannot
    // take part in a job twice, nor in one that did not count it.
    ++sequence_;
    {
      std::lock_guard<std::mutex> lock(wake_mutex_);
      for (int i = 0; i < threads - 1; ++i) tickets_[i]->store(sequence_, std::memory_order_release);
    }
    wake_.notify_all();
    work(0);
    // Wait for the helpers: spin briefly, then sleep.
    for (int spin = 0; remaining_.load(std::memory_order_acquire) > 0; ++spin) {
      if (spin < spin_limit) {
        pause();
        continue;
      }
      std::unique_lock<std::mutex> lock(done_mutex_);
      done_.wait(lock, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
    }
    if (job_.error) std::rethrow_exception(job_.error);
  }

 private:
  static constexpr int spin_limit = 1 << 14;  // ~50 us of pause instructions

  struct Job {
    void (*call)(void*, std::size_t, int) = nullptr;
    void* fn = nullptr;
    std::size_t n_tasks = 0;
    std::atomic<std::size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
  };

  Pool() : pid_(current_pid()) {}

  static long current_pid() {
#if defined(__unix__) || defined(__APPLE__)
    return long(getpid());
#else
    return 0;
#endif
  }

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  void grow(int helpers) {
    while (int(threads_.size()) < helpers) {
      tickets_.push_back(std::make_unique<std::atomic<std::size_t>>(0));
      std::atomic<std::size_t>* ticket = tickets_.back().get();
      const int slot = int(threads_.size()) + 1;
      threads_.emplace_back([this, ticket, slot] { serve(*ticket, slot); });
      threads_.back().detach();
    }
  }

  // Takes tasks until none is left.
  void work(int slot) {
    for (;;) {
      const std::size_t t = job_.next.fetch_add(1, std::memory_order_relaxed);
      if (t >= job_.n_tasks) return;
      try {
        job_.call(job_.fn, t, slot);
      } catch (...) {
        std::lock_guard<std::mutex> lock(job_.error_mutex);
        if (!job_.error) job_.error = std::current_exception();
        job_.next.store(job_.n_tasks, std::memory_order_relaxed);
      }
    }
  }

  void serve(const std::atomic<std::size_t>& ticket, int slot) {
    std::size_t seen = 0;
    for (;;) {
      for (int spin = 0; ticket.load(std::memory_order_acquire) == seen; ++spin) {
        if (spin < spin_limit) {
          pause();
          continue;
        }
        std::unique_lock<std::mutex> lock(wake_mutex_);
        wake_.wait(lock, [&] { return ticket.load(std::memory_order_acquire) != seen; });
      }
      seen = ticket.load(std::memory_order_acquire);
      work(slot);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(done_mutex_);
        done_.notify_one();
      }
    }
  }

  const long pid_;
  std::mutex busy_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<std::atomic<std::size_t>>> tickets_;
  std::size_t sequence_ = 0;
  Job job_;
  std::atomic<int> remaining_{0};
  std::mutex wake_mutex_, done_mutex_;
  std::condition_variable wake_, done_;
};

// fn(t) or fn(t, slot) for t in [0, n_tasks) on up to `threads` threads
// of the pool; slot in [0, threads) names the thread running the task.
template <typename F>
void for_each_task(std::size_t n_tasks, int threads, F&& fn) {
  auto call = [&fn](std::size_t t, int slot) {
    if constexpr (std::is_invocable_v<F&, std::size_t, int>)
      fn(t, slot);
    else
      fn(t);
  };
  if (n_tasks == 0) return;
  if (threads <= 1 || n_tasks == 1) {
    for (std::size_t t = 0; t < n_tasks; ++t) call(t, 0);
    return;
  }
  Pool::instance().run(n_tasks, threads, call);
}

// Splits [0, n) into `parts` contiguous ranges of near-equal length.
struct Split {
  std::size_t n, parts;
  std::size_t begin(std::size_t p) const { return n * p / parts; }
  std::size_t end(std::size_t p) const { return n * (p + 1) / parts; }
};

}  // namespace unmix::parallel
