// Fuzz target: a whole .npy file through unmix::io::read_npy_header,
// read_npy and read_npy_block (the paths unmix-nmf reads its input by).
//
// Beyond "no crash, only clear errors": when the reader accepts a file, the
// header's promise is checked (the data fits in the file), every element is
// compared with the bytes of the input decoded here independently, and a
// block read plainly, transposed and in float32 must equal the same part of
// the whole.
#include <armadillo>
#include <unmix/io/npy.hpp>

#include "fuzz_common.hpp"

namespace {

double element(const std::uint8_t* data, const unmix::io::NpyHeader& h, arma::uword i, arma::uword j) {
  const std::uint64_t index = h.fortran_order ? std::uint64_t(j) * h.rows + i : std::uint64_t(i) * h.cols + j;
  const std::uint8_t* p = data + h.data_offset + index * h.word;
  if (h.word == 8) {
    double v;
    std::memcpy(&v, p, 8);
    return v;
  }
  float v;
  std::memcpy(&v, p, 4);
  return double(v);
}

void check(const std::uint8_t* data, std::size_t size, const std::string& path) {
  using unmix_fuzz::fail;
  using unmix_fuzz::same;
  const unmix::io::NpyHeader h = unmix::io::read_npy_header(path);
  if (h.word != 4 && h.word != 8) fail("word size " + std::to_string(h.word));
  if (h.data_offset > size) fail("data offset beyond the end of the file");
  const std::uint64_t room = (size - h.data_offset) / h.word;
  if (h.rows != 0 && h.cols > room / h.rows)
    fail("accepted a " + std::to_string(h.rows) + " x " + std::to_string(h.cols) +
         " header for a file of " + std::to_string(size) + " bytes");

  const arma::mat A = unmix::io::read_npy<double>(path);
  if (A.n_rows != h.rows || A.n_cols != h.cols) fail("read_npy returned the wrong shape");
  // (An empty array may declare 2^62 columns: loop only when there are elements.)
  for (arma::uword j = 0; A.n_elem > 0 && j < A.n_cols; ++j)
    for (arma::uword i = 0; i < A.n_rows; ++i)
      if (!same(A(i, j), element(data, h, i, j)))
        fail("element (" + std::to_string(i) + ", " + std::to_string(j) + ") differs from the file");

  const unmix::comm::Range rows{h.rows / 4, h.rows / 2}, cols{h.cols / 3, h.cols - h.cols / 3};
  const arma::mat B = unmix::io::read_npy_block<double>(h, rows, cols);
  const arma::mat Bt = unmix::io::read_npy_block<double>(h, rows, cols, true);
  const arma::fmat Bf = unmix::io::read_npy_block<float>(h, rows, cols);
  if (B.n_rows != rows.count || B.n_cols != cols.count || Bt.n_rows != cols.count ||
      Bt.n_cols != rows.count || Bf.n_rows != rows.count || Bf.n_cols != cols.count)
    fail("read_npy_block returned the wrong shape");
  for (arma::uword j = 0; B.n_elem > 0 && j < B.n_cols; ++j)
    for (arma::uword i = 0; i < B.n_rows; ++i) {
      const double want = A(rows.first + i, cols.first + j);
      if (!same(B(i, j), want) || !same(Bt(j, i), want) || !same(double(Bf(i, j)), double(float(want))))
        fail("a block differs from the whole at (" + std::to_string(i) + ", " + std::to_string(j) + ")");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const unmix_fuzz::ScratchFile file(".npy");
  unmix_fuzz::write_file(file.path, data, size);
  unmix_fuzz::expect_clean(file.path, [&] { check(data, size, file.path); });
  return 0;
}
