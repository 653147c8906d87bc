#pragma once
// Seeded random test matrices for scaling studies that need no input file.
//
//   M = W H^T + noise,   W (m x r), H (n x r) uniform in [0, 1),
//   noise uniform in [0, noise * r / 4)   (r / 4 is the mean of W H^T)
//
// Every number is a function of the seed and of global indices only
// (init::CounterRng), and each entry is summed in a fixed order, so a rank
// generates just its block and the global matrix is the same, bit for bit,
// on any process grid. A sparse matrix keeps each entry with probability
// `density`, decided by a hash of its global (i, j).
#include <armadillo>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../comm/split.hpp"
#include "../init/counter_rng.hpp"

namespace unmix::io {

struct GenerateSpec {
  arma::uword m = 0, n = 0;  // global shape
  arma::uword rank = 10;     // r, the rank of the noiseless part
  double noise = 0.01;       // relative to the mean entry of W H^T
  double density = 1.0;      // fraction of entries kept (1 = dense)
  std::uint64_t seed = 0;
};

namespace detail {

// Streams far from the initializations' (init/random.hpp) so that a run
// seeded like its data does not start at the true factors.
enum GenerateStream : std::uint64_t { gen_W = 0x9e11, gen_H = 0x9e12, gen_noise = 0x9e13, gen_keep = 0x9e14 };

inline void check(const GenerateSpec& s) {
  auto fail = [](const std::string& what, const std::string& got) {
    throw std::invalid_argument("unmix::io::generate: " + what + ", got " + got);
  };
  if (s.m == 0 || s.n == 0)
    fail("the shape must be at least 1 x 1", std::to_string(s.m) + " x " + std::to_string(s.n));
  if (s.rank < 1) fail("rank must be >= 1", std::to_string(s.rank));
  if (!(s.noise >= 0) || !std::isfinite(s.noise)) fail("noise must be finite and >= 0", std::to_string(s.noise));
  if (!(s.density > 0 && s.density <= 1)) fail("density must be in (0, 1]", std::to_string(s.density));
}

// The rows first .. first + count - 1 of a factor, transposed (r x count) so
// that the r values of one row are contiguous.
inline arma::mat factor_rows_t(std::uint64_t seed, std::uint64_t stream, comm::Range rows,
                               arma::uword r) {
  const init::CounterRng rng(seed, stream);
  arma::mat Ft(r, rows.count);
  for (arma::uword i = 0; i < rows.count; ++i)
    for (arma::uword c = 0; c < r; ++c) Ft(c, i) = rng.uniform(rows.first + i, c);
  return Ft;
}

// Entry generator for one block.
class Entries {
 public:
  Entries(const GenerateSpec& s, comm::Range rows, comm::Range cols)
      : r_(s.rank), scale_(s.noise * double(s.rank) / 4.0), rows_(rows), cols_(cols),
        Wt_(factor_rows_t(s.seed, gen_W, rows, s.rank)),
        Ht_(factor_rows_t(s.seed, gen_H, cols, s.rank)), noise_(s.seed, gen_noise) {}

  // Global entry (rows.first + i, cols.first + j).
  double operator()(arma::uword i, arma::uword j) const {
    const double* w = Wt_.colptr(i);
    const double* h = Ht_.colptr(j);
    double v = 0.0;
    for (arma::uword c = 0; c < r_; ++c) v += w[c] * h[c];
    return v + scale_ * noise_.uniform(rows_.first + i, cols_.first + j);
  }

 private:
  arma::uword r_;
  double scale_;
  comm::Range rows_, cols_;
  arma::mat Wt_, Ht_;
  init::CounterRng noise_;
};

}  // namespace detail

// The block rows x cols of the dense generated matrix.
template <typename eT>
arma::Mat<eT> generate_dense(const GenerateSpec& s, comm::Range rows, comm::Range cols) {
  detail::check(s);
  const detail::Entries entry(s, rows, cols);
  arma::Mat<eT> B(rows.count, cols.count);
  for (arma::uword j = 0; j < cols.count; ++j)
    for (arma::uword i = 0; i < rows.count; ++i) B(i, j) = static_cast<eT>(entry(i, j));
  return B;
}

// The block rows x cols of the sparse generated matrix: the dense matrix's
// entries where the hash of (i, j) falls below `density`. The cost is one
// hash per entry of the block, stored or not.
template <typename eT>
arma::SpMat<eT> generate_sparse(const GenerateSpec& s, comm::Range rows, comm::Range cols) {
  detail::check(s);
  const detail::Entries entry(s, rows, cols);
  const init::CounterRng keep(s.seed, detail::gen_keep);
  std::vector<arma::uword> row_idx, col_ptr(cols.count + 1, 0);
  std::vector<eT> values;
  const double expected = s.density * double(rows.count) * double(cols.count);
  row_idx.reserve(std::size_t(expected * 1.05) + 16);
  values.reserve(std::size_t(expected * 1.05) + 16);
  for (arma::uword j = 0; j < cols.count; ++j) {
    for (arma::uword i = 0; i < rows.count; ++i) {
      if (keep.uniform(rows.first + i, cols.first + j) < s.density) {
        row_idx.push_back(i);
        values.push_back(static_cast<eT>(entry(i, j)));
      }
    }
    col_ptr[j + 1] = row_idx.size();
  }
  return arma::SpMat<eT>(arma::uvec(row_idx), arma::uvec(col_ptr), arma::Col<eT>(values),
                         rows.count, cols.count);
}

}  // namespace unmix::io
