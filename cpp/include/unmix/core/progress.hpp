#pragma once
#include <functional>

namespace unmix {

struct Progress {
  int iteration;     // 1-based, after both half-steps
  double objective;  // penalized objective
  double rel_error;  // ||M - W H^T||_F / ||M||_F
  double elapsed;    // seconds since the fit started
};

// Called once per iteration; returning true asks the driver to stop.
using Callback = std::function<bool(const Progress&)>;

}  // namespace unmix
