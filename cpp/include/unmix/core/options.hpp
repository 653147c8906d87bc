#pragma once
#include <armadillo>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace unmix {

enum class Solver { mu, hals, bpp, admm };
enum class Init { random, nndsvd, nndsvda, nndsvdar, custom };
// The data term: 1/2 ||M - W H^T||_F^2, or the generalized Kullback-Leibler
// divergence sum M log(M / WH^T) - M + WH^T of Poisson counts (MU only).
enum class Loss { frobenius, kl };

// Per-factor settings (DESIGN.md §1). Penalties:
//   l1 ||F||_1 + l2 / 2 ||F||_F^2 + smooth / 2 tr(F^T L F),  L = D - S,
// with S = *graph a symmetric non-negative similarity between rows of F.
// Hard constraints: lower <= F <= upper (per column when lower_cols /
// upper_cols are given), rows of F on the probability simplex (simplex) or,
// with simplex_sums, row i summing to simplex_sums(i) (a scaled simplex: the
// abundances of a pixel sum to its own intensity), and the columns
// fixed_cols held at fixed_values (known endmembers).
struct FactorOptions {
  double l1 = 0.0;
  double l2 = 0.0;
  bool fixed = false;  // keep the whole factor at its initial value
  double smooth = 0.0;
  std::shared_ptr<const arma::sp_mat> graph;
  // lambda log det(F^T F + delta I), delta = minvol_delta * tr(F0^T F0) / k.
  double minvol = 0.0;
  double minvol_delta = 0.1;
  double lower = 0.0;
  double upper = std::numeric_limits<double>::infinity();
  arma::vec lower_cols, upper_cols;  // size k, or empty for the scalars
  bool simplex = false;
  arma::vec simplex_sums;  // this rank's rows' sums with simplex; empty: every row sums to one
  std::vector<arma::uword> fixed_cols;
  arma::mat fixed_values;  // rows x fixed_cols.size(), this rank's rows
  std::string name;        // how error messages call this factor ("W" or "H" if empty)

  bool bounded() const {
    return lower != 0.0 || upper != std::numeric_limits<double>::infinity() ||
           !lower_cols.is_empty() || !upper_cols.is_empty();
  }
};

struct Options {
  Solver solver = Solver::bpp;
  Init init = Init::nndsvda;
  Loss loss = Loss::frobenius;
  int max_iter = 500;
  // Stop when one iteration lowers the penalized objective by less than tol
  // times its value, or when ||M - W H^T||_F <= tol ||M||_F.
  double tol = 1e-5;
  double time_limit = std::numeric_limits<double>::infinity();  // seconds
  std::uint64_t seed = 0;
  // Threads of the core's own kernels (parallel/pool.hpp); 0: every core
  // this process may run on. The result is the same for any number.
  int threads = 0;
  FactorOptions W, H;
  // The caller's natural orientation is the transpose of M (a C-ordered numpy
  // array seen as column-major). Initialization and the update order follow
  // the natural orientation, so M and its transpose give the same factors.
  bool transposed = false;
  // Extrapolation with restarts (core/extrapolation.hpp): several times
  // fewer iterations to a given error, but the objective may rise at a
  // restart. Frobenius loss, solvers bpp and admm (exact half-steps).
  bool extrapolate = false;
  std::string data_name = "M";  // how error messages call the data
};

}  // namespace unmix
