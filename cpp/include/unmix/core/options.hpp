#pragma once
#include <cstdint>
#include <limits>
#include <string>

namespace unmix {

enum class Solver { mu, hals, bpp };
enum class Init { random, nndsvd, nndsvda, nndsvdar, custom };

// Per-factor settings. Penalties follow DESIGN.md §1:
// lambda1 * ||F||_1 + lambda2 / 2 * ||F||_F^2.
struct FactorOptions {
  double l1 = 0.0;
  double l2 = 0.0;
  bool fixed = false;  // keep this factor at its initial value
};

struct Options {
  Solver solver = Solver::bpp;
  Init init = Init::nndsvda;
  int max_iter = 500;
  // Stop when one iteration lowers the penalized objective by less than tol
  // times its value, or when ||M - W H^T||_F <= tol ||M||_F.
  double tol = 1e-5;
  double time_limit = std::numeric_limits<double>::infinity();  // seconds
  std::uint64_t seed = 0;
  FactorOptions W, H;
  // The caller's natural orientation is the transpose of M (a C-ordered numpy
  // array seen as column-major). Initialization and the update order follow
  // the natural orientation, so M and its transpose give the same factors.
  bool transposed = false;
  std::string data_name = "M";  // how error messages call the data
};

}  // namespace unmix
