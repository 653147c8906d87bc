#pragma once
// The core runs its heavy work (the data products, the row-wise updates) on
// its own threads, and calls BLAS only for small matrices, often from
// several of those threads at once. A BLAS that starts threads of its own
// there oversubscribes the cores (and OpenBLAS's idle threads spin for a
// while after each call, taking the cores from ours), so a fit runs the
// process's BLAS on one thread and puts the setting back afterwards.
//
// The setter is looked up at run time in the library that provides the
// dgemm the core calls (OpenBLAS's openblas_set_num_threads), so the core
// works with any BLAS; one without that setter is left alone. Fits running
// at the same time share the setting: the first to start saves it, the last
// to finish restores it.
#include <mutex>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define UNMIX_HAS_DLSYM 1
#endif

extern "C" void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
                       const double*, const int*, const double*, const int*, const double*, double*,
                       const int*);

namespace unmix::parallel {

class SingleThreadedBlas {
 public:
  SingleThreadedBlas() {
    Shared& s = shared();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.users++ == 0 && s.set && s.get) {
      s.saved = s.get();
      if (s.saved != 1) s.set(1);
    }
  }
  ~SingleThreadedBlas() {
    Shared& s = shared();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (--s.users == 0 && s.set && s.get && s.saved > 1) s.set(s.saved);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  struct Shared {
    std::mutex mutex;
    int users = 0, saved = 0;
    void (*set)(int) = nullptr;
    int (*get)() = nullptr;
    Shared() {
#if defined(UNMIX_HAS_DLSYM)
      // The library of dgemm: a Python extension loads its BLAS privately,
      // where a global lookup would not see it.
      Dl_info info{};
      if (dladdr(reinterpret_cast<void*>(&dgemm_), &info) == 0 || info.dli_fname == nullptr) return;
      void* blas = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
      if (blas == nullptr) return;
      set = reinterpret_cast<void (*)(int)>(dlsym(blas, "openblas_set_num_threads"));
      get = reinterpret_cast<int (*)()>(dlsym(blas, "openblas_get_num_threads"));
      dlclose(blas);  // it stays loaded: the core links it
#endif
    }
  };
  static Shared& shared() {
    static Shared s;
    return s;
  }
};

}  // namespace unmix::parallel
