// Fuzz target: a whole MatrixMarket file through unmix::io::read_mtx_header
// and read_mtx_block.
//
// Sparse sizes are not bounded by the file (a 10^9 x 10^9 matrix may hold
// three entries), so the target reads at most the first 2^16 columns; the
// header, every line and every index are still checked. When the reader
// accepts a file, two column halves must agree with the whole block, a
// float32 read must have its shape, and no more entries may be stored than
// the file declares.
#include <armadillo>
#include <unmix/io/mtx.hpp>

#include "fuzz_common.hpp"

namespace {

void check(const std::string& path) {
  using unmix_fuzz::fail;
  using unmix_fuzz::same;
  const unmix::io::MtxHeader h = unmix::io::read_mtx_header(path);
  const arma::uword n_cols = std::min<arma::uword>(h.cols, arma::uword(1) << 16);
  const unmix::comm::Range rows{0, h.rows}, cols{0, n_cols};
  const arma::sp_mat A = unmix::io::read_mtx_block<double>(h, rows, cols);
  if (A.n_rows != h.rows || A.n_cols != n_cols) fail("read_mtx_block returned the wrong shape");
  if (A.n_nonzero > 2 * h.entries) fail("more stored entries than the file declares");

  const arma::uword half = n_cols / 2;
  const arma::sp_mat L = unmix::io::read_mtx_block<double>(h, rows, {0, half});
  const arma::sp_mat R = unmix::io::read_mtx_block<double>(h, rows, {half, n_cols - half});
  const arma::sp_fmat F = unmix::io::read_mtx_block<float>(h, rows, cols);
  if (L.n_cols != half || R.n_cols != n_cols - half || F.n_rows != h.rows || F.n_cols != n_cols)
    fail("block shapes disagree");
  for (auto it = A.begin(); it != A.end(); ++it) {
    const arma::uword i = it.row(), j = it.col();
    const double v = *it;
    const double part = j < half ? double(L(i, j)) : double(R(i, j - half));
    if (!same(part, v)) fail("a column block differs from the whole");
  }
  if (L.n_nonzero + R.n_nonzero != A.n_nonzero) fail("the column blocks hold other entries than the whole");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const unmix_fuzz::ScratchFile file(".mtx");
  unmix_fuzz::write_file(file.path, data, size);
  unmix_fuzz::expect_clean(file.path, [&] { check(file.path); });
  return 0;
}
