#pragma once
#include <armadillo>
#include <string>
#include <vector>

#include "state.hpp"

namespace unmix {

enum class StopReason { tol, max_iter, time_limit, callback };

inline const char* to_string(StopReason r) {
  switch (r) {
    case StopReason::tol: return "tol";
    case StopReason::max_iter: return "max_iter";
    case StopReason::time_limit: return "time_limit";
    case StopReason::callback: return "callback";
  }
  return "unknown";
}

// Seconds spent in each phase of a fit.
struct Timings {
  double init = 0, products = 0, gram = 0, update = 0, total = 0;
};

template <typename eT>
struct Result {
  arma::Mat<eT> W, H;              // M ~= W * H.t()
  int n_iter = 0;
  std::vector<double> objective;   // [0] at the initialization, then per iteration
  std::vector<double> rel_error;   // same indexing
  double data_norm = 0;             // ||M||_F, for absolute errors
  bool converged = false;
  StopReason stop_reason = StopReason::max_iter;
  Timings timings;
  std::vector<Event> events;       // what the driver did on its own (re-seeding)
};

}  // namespace unmix
