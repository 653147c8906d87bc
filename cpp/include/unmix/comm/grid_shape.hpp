#pragma once
// The process grid shape for MPI-FAUN (DESIGN.md §2). Needs no MPI, so a
// launcher or a test can pick the grid before any communicator exists.
#include <armadillo>
#include <stdexcept>
#include <string>
#include <utility>

namespace unmix::comm {

// Words one rank moves per iteration on a pr x pc grid, in units of k (the
// factor width cancels when comparing shapes). Updating W all-gathers the
// n/pc rows of H_j among pr ranks and reduce-scatters the m/pr rows of
// M_ij H_j among pc ranks; updating H is the mirror image. The k x k Gram
// all-reduce costs the same on every grid of p ranks and is left out.
inline double grid_words(int pr, int pc, arma::uword m, arma::uword n) {
  const double rows = double(m) / pr, cols = double(n) / pc;
  return rows * (pc - 1) / pc + cols * (pr - 1) / pr;
}

// The pr x pc = p grid with the least communication per iteration, among
// those with pr <= m and pc <= n (a grid row or column without data would
// leave ranks with an empty block). A tall-skinny matrix gets p x 1, a wide
// one 1 x p, a square one the most square factorization of p.
inline std::pair<int, int> choose_grid(int p, arma::uword m, arma::uword n) {
  if (p < 1)
    throw std::invalid_argument("unmix::comm::choose_grid: p (number of ranks) must be >= 1, got " +
                                std::to_string(p));
  int best_r = 0;
  double best = 0.0;
  for (int pr = 1; pr <= p; ++pr) {
    if (p % pr != 0) continue;
    const int pc = p / pr;
    if (arma::uword(pr) > m || arma::uword(pc) > n) continue;
    const double w = grid_words(pr, pc, m, n);
    // Ties (m == n, p = 2) go to the first shape found; the relative slack
    // keeps rounding from flipping the choice between equal-cost shapes.
    if (best_r == 0 || w < best * (1.0 - 1e-12)) {
      best_r = pr;
      best = w;
    }
  }
  if (best_r == 0)
    throw std::invalid_argument(
        "unmix::comm::choose_grid: p must factor as pr x pc with pr <= m and pc <= n for a " +
        std::to_string(m) + " x " + std::to_string(n) + " matrix, got p = " + std::to_string(p) +
        " (use fewer ranks)");
  return {best_r, p / best_r};
}

}  // namespace unmix::comm
