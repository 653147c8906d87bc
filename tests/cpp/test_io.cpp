// The .npy and .mtx readers, the .npy writer and the generated matrices, on
// their serial code paths (std::ifstream; the MPI-IO path runs in unmix-nmf).
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <unmix/io/generate.hpp>
#include <unmix/io/mtx.hpp>
#include <unmix/io/npy.hpp>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using unmix::comm::Range;

namespace {

// A fresh folder per test case, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("unmix_test_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A .npy file of the given format version with a hand-written header.
std::string npy_bytes(int version, const std::string& dict, const std::string& data) {
  std::string header = dict;
  const std::size_t pre = version == 1 ? 10 : 12;
  while ((pre + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += char(version);
  out += char(0);
  const std::size_t len = header.size();
  out += char(len & 0xff);
  out += char((len >> 8) & 0xff);
  if (version > 1) {
    out += char(0);
    out += char(0);
  }
  return out + header + data;
}

template <typename eT>
arma::Mat<eT> test_matrix(arma::uword r, arma::uword c) {
  arma::Mat<eT> A(r, c);
  for (arma::uword j = 0; j < c; ++j)
    for (arma::uword i = 0; i < r; ++i) A(i, j) = eT(100 * i + j) + eT(0.25);
  return A;
}

}  // namespace

TEMPLATE_TEST_CASE("npy round trip in C and Fortran order", "[io][npy]", double, float) {
  TempDir dir;
  const arma::Mat<TestType> A = test_matrix<TestType>(7, 5);
  for (bool fortran : {false, true}) {
    const std::string path = dir / (fortran ? "f.npy" : "c.npy");
    unmix::io::write_npy(path, A, fortran);
    const auto h = unmix::io::read_npy_header(path);
    CHECK(h.rows == 7);
    CHECK(h.cols == 5);
    CHECK(h.fortran_order == fortran);
    CHECK(h.dtype() == (sizeof(TestType) == 8 ? "float64" : "float32"));
    CHECK(h.data_offset % 64 == 0);
    CHECK(fs::file_size(path) == h.data_offset + A.n_elem * sizeof(TestType));
    CHECK(arma::approx_equal(unmix::io::read_npy<TestType>(path), A, "absdiff", 0));

    // Every block, plain and transposed, and converted to the other precision.
    for (const Range rows : {Range{0, 7}, Range{2, 3}, Range{6, 1}}) {
      for (const Range cols : {Range{0, 5}, Range{1, 2}, Range{4, 1}}) {
        const arma::Mat<TestType> want =
            A.submat(rows.first, cols.first, rows.first + rows.count - 1, cols.first + cols.count - 1);
        CHECK(arma::approx_equal(unmix::io::read_npy_block<TestType>(h, rows, cols), want, "absdiff", 0));
        CHECK(arma::approx_equal(unmix::io::read_npy_block<TestType>(h, rows, cols, true),
                                 arma::Mat<TestType>(want.t()), "absdiff", 0));
        CHECK(arma::approx_equal(unmix::io::read_npy_block<double>(h, rows, cols),
                                 arma::conv_to<arma::mat>::from(want), "absdiff", 0));
        CHECK(arma::approx_equal(unmix::io::read_npy_block<float>(h, rows, cols),
                                 arma::conv_to<arma::fmat>::from(want), "absdiff", 0));
      }
    }
    CHECK(unmix::io::read_npy_block<TestType>(h, {3, 0}, {0, 5}).n_elem == 0);
    REQUIRE_THROWS_WITH(unmix::io::read_npy_block<TestType>(h, {5, 3}, {0, 5}),
                        Contains("must lie inside the 7 x 5 array"));
  }
  // Nothing but the two results is left in the folder (no temporary files).
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);
}

TEST_CASE("npy format versions 2.0 and 3.0 and numpy's header spellings", "[io][npy]") {
  TempDir dir;
  const arma::mat A = test_matrix<double>(3, 2);
  const arma::mat At = A.t();
  const std::string data(reinterpret_cast<const char*>(At.memptr()), At.n_elem * 8);
  for (int version : {1, 2, 3}) {
    const std::string path = dir / ("v" + std::to_string(version) + ".npy");
    write_bytes(path, npy_bytes(version, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", data));
    const auto h = unmix::io::read_npy_header(path);
    CHECK(h.version == version);
    CHECK(arma::approx_equal(unmix::io::read_npy<double>(path), A, "absdiff", 0));
  }
  // Key order and the trailing comma are not fixed.
  const std::string path = dir / "order.npy";
  write_bytes(path, npy_bytes(1, "{'shape': (3, 2), 'fortran_order': False, 'descr': '<f8'}", data));
  CHECK(arma::approx_equal(unmix::io::read_npy<double>(path), A, "absdiff", 0));
}

TEST_CASE("npy errors name the file and what is wrong", "[io][npy]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(dir / "missing.npy"),
                      Contains("missing.npy") && Contains("file not found"));
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(dir.path.string()), Contains("is a folder"));

  const std::string text = dir / "text.npy";
  write_bytes(text, "hello, this is not numpy");
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(text), Contains("text.npy") && Contains("magic string"));

  const std::string ints = dir / "ints.npy";
  write_bytes(ints, npy_bytes(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", std::string(32, '\0')));
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(ints), Contains("unsupported dtype") && Contains("'<i8'"));
  const std::string big = dir / "big.npy";
  write_bytes(big, npy_bytes(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }", std::string(32, '\0')));
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(big), Contains("big-endian"));

  const std::string vec = dir / "vec.npy";
  write_bytes(vec, npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", std::string(32, '\0')));
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(vec), Contains("2-D") && Contains("shape (4,) (1-D)"));
  const std::string cube = dir / "cube.npy";
  write_bytes(cube, npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 2), }", std::string(32, '\0')));
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(cube), Contains("shape (1, 2, 2) (3-D)"));

  const std::string v9 = dir / "v9.npy";
  write_bytes(v9, npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", std::string(32, '\0')));
  {
    std::fstream f(v9, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(6);
    f.put(char(9));
  }
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(v9), Contains("format version 9.0"));

  const std::string cut = dir / "cut.npy";
  unmix::io::write_npy(cut, arma::mat(10, 4, arma::fill::ones));
  const auto size = fs::file_size(cut);
  fs::resize_file(cut, size - 8);
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(cut),
                      Contains("cut.npy") && Contains("truncated") && Contains(std::to_string(size - 8) + " bytes"));
  fs::resize_file(cut, 20);
  REQUIRE_THROWS_WITH(unmix::io::read_npy_header(cut), Contains("truncated"));

  REQUIRE_THROWS_WITH(unmix::io::write_npy(dir / "no/such/folder/x.npy", arma::mat(2, 2)),
                      Contains("does not exist"));
}

TEST_CASE("mtx coordinate files: blocks, symmetry, pattern", "[io][mtx]") {
  TempDir dir;
  const std::string general = dir / "general.mtx";
  write_bytes(general,
              "%%MatrixMarket matrix coordinate real general\n"
              "% a comment\n"
              "\n"
              "4 3 5\n"
              "1 1 1.5\n"
              "2 3 2\n"
              "4 1 -3e-1\n"
              "3 2 4\n"
              "4 3 5\n");
  const auto h = unmix::io::read_mtx_header(general);
  CHECK(h.rows == 4);
  CHECK(h.cols == 3);
  CHECK(h.entries == 5);
  arma::mat full(4, 3, arma::fill::zeros);
  full(0, 0) = 1.5;
  full(1, 2) = 2;
  full(3, 0) = -0.3;
  full(2, 1) = 4;
  full(3, 2) = 5;
  CHECK(arma::approx_equal(arma::mat(unmix::io::read_mtx_block<double>(h, {0, 4}, {0, 3})), full, "absdiff", 1e-15));
  const arma::mat block(unmix::io::read_mtx_block<double>(h, {1, 3}, {1, 2}));
  CHECK(arma::approx_equal(block, arma::mat(full.submat(1, 1, 3, 2)), "absdiff", 1e-15));
  const arma::fmat fblock(unmix::io::read_mtx_block<float>(h, {3, 1}, {0, 3}));
  CHECK(fblock(0, 2) == 5.0f);

  const std::string sym = dir / "sym.mtx";
  write_bytes(sym,
              "%%MatrixMarket matrix coordinate pattern symmetric\n"
              "3 3 3\n"
              "1 1\n"
              "2 1\n"
              "3 2\n");
  const arma::mat S(unmix::io::read_mtx_block<double>(unmix::io::read_mtx_header(sym), {0, 3}, {0, 3}));
  const arma::mat S_want = {{1, 1, 0}, {1, 0, 1}, {0, 1, 0}};
  CHECK(arma::approx_equal(S, S_want, "absdiff", 0));

  const std::string ints = dir / "int.mtx";
  write_bytes(ints, "%%MatrixMarket matrix coordinate integer general\n2 2 1\n2 2 7\n");
  CHECK(arma::mat(unmix::io::read_mtx_block<double>(unmix::io::read_mtx_header(ints), {0, 2}, {0, 2}))(1, 1) == 7);
}

TEST_CASE("mtx errors name the file and the line", "[io][mtx]") {
  TempDir dir;
  auto header_of = [&](const std::string& name, const std::string& text) {
    const std::string path = dir / name;
    write_bytes(path, text);
    return path;
  };
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_header(dir / "none.mtx"), Contains("file not found"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_header(header_of("a.mtx", "%%MatrixMarket matrix array real general\n2 2\n")),
                      Contains("coordinate"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_header(header_of("b.mtx", "1 2 3\n")), Contains("line 1") && Contains("banner"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_header(header_of("c.mtx", "%%MatrixMarket matrix coordinate complex general\n")),
                      Contains("real, integer or pattern"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_header(header_of("d.mtx", "%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n")),
                      Contains("must be square"));

  const auto bad_row = unmix::io::read_mtx_header(
      header_of("e.mtx", "%%MatrixMarket matrix coordinate real general\n%\n3 2 2\n1 1 1\n4 1 1\n"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_block<double>(bad_row, {0, 3}, {0, 2}),
                      Contains("e.mtx' line 5") && Contains("row index 4 is outside 1..3"));
  const auto bad_col = unmix::io::read_mtx_header(
      header_of("f.mtx", "%%MatrixMarket matrix coordinate real general\n3 2 1\n1 0 1\n"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_block<double>(bad_col, {0, 3}, {0, 2}),
                      Contains("line 3") && Contains("column index 0"));
  const auto short_file = unmix::io::read_mtx_header(
      header_of("g.mtx", "%%MatrixMarket matrix coordinate real general\n3 2 3\n1 1 1\n"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_block<double>(short_file, {0, 3}, {0, 2}),
                      Contains("has 1 entries, the size line declares 3"));
  const auto long_file = unmix::io::read_mtx_header(
      header_of("h.mtx", "%%MatrixMarket matrix coordinate real general\n3 2 1\n1 1 1\n2 2 2\n"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_block<double>(long_file, {0, 3}, {0, 2}),
                      Contains("line 4") && Contains("more entries than the 1"));
  const auto no_value = unmix::io::read_mtx_header(
      header_of("i.mtx", "%%MatrixMarket matrix coordinate real general\n3 2 1\n1 1\n"));
  REQUIRE_THROWS_WITH(unmix::io::read_mtx_block<double>(no_value, {0, 3}, {0, 2}),
                      Contains("line 3") && Contains("expected a value"));
}

TEST_CASE("generated matrices are the same on every grid", "[io][generate]") {
  unmix::io::GenerateSpec s;
  s.m = 23;
  s.n = 17;
  s.rank = 3;
  s.noise = 0.1;
  s.seed = 5;
  const arma::mat full = unmix::io::generate_dense<double>(s, {0, s.m}, {0, s.n});
  CHECK(full.min() >= 0);
  CHECK(arma::rank(full) >= 3);
  for (int pr : {1, 2, 3}) {
    for (int pc : {1, 2, 4}) {
      for (int i = 0; i < pr; ++i) {
        for (int j = 0; j < pc; ++j) {
          const Range r = unmix::comm::split(s.m, pr, i), c = unmix::comm::split(s.n, pc, j);
          const arma::mat B = unmix::io::generate_dense<double>(s, r, c);
          CHECK(arma::approx_equal(B, arma::mat(full.submat(r.first, c.first, r.first + r.count - 1,
                                                           c.first + c.count - 1)),
                                   "absdiff", 0));
        }
      }
    }
  }
  // Noise at level 0 leaves exactly rank 3.
  s.noise = 0;
  CHECK(arma::rank(unmix::io::generate_dense<double>(s, {0, s.m}, {0, s.n})) == 3);

  s.noise = 0.1;
  s.density = 0.3;
  s.m = 200;
  s.n = 150;
  const arma::sp_mat sp = unmix::io::generate_sparse<double>(s, {0, s.m}, {0, s.n});
  const arma::mat dense_ref = unmix::io::generate_dense<double>(s, {0, s.m}, {0, s.n});
  CHECK(double(sp.n_nonzero) / double(s.m * s.n) == Approx(0.3).margin(0.02));
  // Stored entries are the dense matrix's entries.
  const arma::mat spd(sp);
  CHECK(arma::approx_equal(spd % arma::conv_to<arma::mat>::from(spd != 0), dense_ref % arma::conv_to<arma::mat>::from(spd != 0), "absdiff", 0));
  const Range r = unmix::comm::split(s.m, 3, 1), c = unmix::comm::split(s.n, 2, 1);
  const arma::mat blk(unmix::io::generate_sparse<double>(s, r, c));
  CHECK(arma::approx_equal(blk, arma::mat(spd.submat(r.first, c.first, r.first + r.count - 1, c.first + c.count - 1)),
                           "absdiff", 0));
  s.density = 0;
  REQUIRE_THROWS_WITH(unmix::io::generate_sparse<double>(s, {0, 1}, {0, 1}), Contains("density must be in (0, 1]"));
}
