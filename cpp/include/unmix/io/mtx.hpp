#pragma once
// MatrixMarket coordinate files (.mtx): real, integer or pattern entries,
// general or symmetric. Text cannot be entered at an offset, so every
// reader parses the whole file and keeps the entries of its own block; the
// memory held is only the block's.
#include <algorithm>
#include <armadillo>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../comm/split.hpp"
#include "excerpt.hpp"

namespace unmix::io {

struct MtxHeader {
  enum class Field { real, integer, pattern };
  std::string path;
  arma::uword rows = 0, cols = 0;
  std::uint64_t entries = 0;  // lines of entries the size line declares
  Field field = Field::real;
  bool symmetric = false;  // only one triangle is stored
};

namespace detail {

// Reads a .mtx file line by line, keeping the line number for messages.
class MtxScanner {
 public:
  explicit MtxScanner(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st))
      throw std::runtime_error("unmix::io::read_mtx: '" + path + "': file not found");
    if (fs::is_directory(st))
      throw std::runtime_error("unmix::io::read_mtx: '" + path + "' is a folder, not a .mtx file");
    // The file is read twice (header, then entries): a pipe cannot be.
    if (!fs::is_regular_file(st))
      throw std::runtime_error("unmix::io::read_mtx: '" + path +
                               "' is not a regular file (a pipe or a device?): expected a .mtx file");
    in_.open(path, std::ios::binary);
    if (!in_)
      throw std::runtime_error("unmix::io::read_mtx: cannot open '" + path + "' for reading (" +
                               std::strerror(errno) + ")");
  }

  // The banner and the size line; leaves the scanner at the first entry.
  MtxHeader header() {
    MtxHeader h;
    h.path = path_;
    if (!next_line(false)) invalid("the file is empty: expected the MatrixMarket banner");
    std::istringstream banner(line_);
    std::string tag, object, format, field, symmetry;
    banner >> tag >> object >> format >> field >> symmetry;
    if (lower(tag) != "%%matrixmarket" || lower(object) != "matrix")
      invalid("expected the banner '%%MatrixMarket matrix coordinate real general', got '" +
              excerpt(line_) + "'");
    if (lower(format) != "coordinate")
      invalid("only the coordinate (sparse) MatrixMarket format is supported, got '" +
              excerpt(format, 40) + "' (save dense data as .npy)");
    field = lower(field);
    if (field == "real" || field == "double")
      h.field = MtxHeader::Field::real;
    else if (field == "integer")
      h.field = MtxHeader::Field::integer;
    else if (field == "pattern")
      h.field = MtxHeader::Field::pattern;
    else
      invalid("the field must be real, integer or pattern, got '" + excerpt(field, 40) + "'");
    symmetry = lower(symmetry);
    if (symmetry == "general")
      h.symmetric = false;
    else if (symmetry == "symmetric")
      h.symmetric = true;
    else
      invalid("the symmetry must be general or symmetric, got '" + excerpt(symmetry, 40) + "'");

    if (!next_line(true)) invalid("the size line 'rows cols entries' is missing");
    std::istringstream size(line_);
    long long r = -1, c = -1, nz = -1;
    std::string rest;
    if (!(size >> r >> c >> nz) || (size >> rest) || r < 0 || c < 0 || nz < 0)
      invalid("expected the size line 'rows cols entries' (three non-negative integers), got '" +
              excerpt(line_) + "'");
    h.rows = arma::uword(r);
    h.cols = arma::uword(c);
    h.entries = std::uint64_t(nz);
    if (h.symmetric && h.rows != h.cols)
      invalid("a symmetric matrix must be square, got " + std::to_string(r) + " x " +
              std::to_string(c));
    // Sparse positions are 64-bit numbers i + j * rows (Armadillo's too).
    if (h.cols != 0 && h.rows > std::numeric_limits<std::uint64_t>::max() / h.cols)
      invalid("the size line declares " + std::to_string(r) + " x " + std::to_string(c) +
              ", more elements than a 64-bit index can address");
    return h;
  }

  // The next entry as 0-based indices; false at the end of the file.
  bool entry(const MtxHeader& h, arma::uword& i, arma::uword& j, double& v) {
    if (!next_line(true)) return false;
    const char* p = line_.c_str();
    char* end = nullptr;
    const unsigned long long row = index(p, end, "row");
    p = end;
    const unsigned long long col = index(p, end, "column");
    p = end;
    if (row < 1 || row > h.rows)
      invalid("row index " + std::to_string(row) + " is outside 1.." + std::to_string(h.rows) +
              " (the size line declares " + std::to_string(h.rows) + " x " +
              std::to_string(h.cols) + ")");
    if (col < 1 || col > h.cols)
      invalid("column index " + std::to_string(col) + " is outside 1.." + std::to_string(h.cols) +
              " (the size line declares " + std::to_string(h.rows) + " x " +
              std::to_string(h.cols) + ")");
    if (h.field == MtxHeader::Field::pattern) {
      v = 1.0;
    } else {
      errno = 0;
      v = std::strtod(p, &end);
      if (end == p) invalid("expected a value after the indices, got '" + excerpt(line_) + "'");
      if (errno == ERANGE && std::abs(v) > 1.0)
        invalid("the value in '" + excerpt(line_) + "' is too large for float64");
      p = end;
    }
    while (*p != '\0' && std::isspace(static_cast<unsigned char>(*p))) ++p;
    if (*p != '\0') invalid("unexpected text after the entry: '" + excerpt(line_) + "'");
    i = arma::uword(row - 1);
    j = arma::uword(col - 1);
    return true;
  }

  [[noreturn]] void invalid(const std::string& what) const {
    throw std::invalid_argument("unmix::io::read_mtx: '" + path_ + "' line " +
                                std::to_string(line_no_) + ": " + what);
  }
  std::uint64_t line_no() const { return line_no_; }

 private:
  static std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  // Comment lines (%) and blank lines are skipped after the banner.
  bool next_line(bool skip_comments) {
    while (std::getline(in_, line_)) {
      ++line_no_;
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.find('\0') != std::string::npos)
        invalid("a NUL byte in a text file (binary data?): '" + excerpt(line_) + "'");
      if (!skip_comments) return true;
      std::size_t k = 0;
      while (k < line_.size() && std::isspace(static_cast<unsigned char>(line_[k]))) ++k;
      if (k == line_.size() || line_[k] == '%') continue;
      return true;
    }
    return false;
  }
  unsigned long long index(const char* p, char*& end, const char* what) const {
    while (*p != '\0' && std::isspace(static_cast<unsigned char>(*p))) ++p;
    errno = 0;
    const unsigned long long v = std::strtoull(p, &end, 10);
    if (end == p || *p == '-' || *p == '+' || errno == ERANGE)
      invalid(std::string("expected a ") + what + " index (a positive integer), got '" +
              excerpt(line_) + "'");
    return v;
  }

  std::string path_;
  std::ifstream in_;
  std::string line_;
  std::uint64_t line_no_ = 0;
};

// Compressed sparse columns from entries in file order. Duplicates are summed
// in the order of the file, so every block split of a matrix gives the same
// sums (Armadillo's batch constructor sorts with an unstable sort); stored
// zeros are dropped.
template <typename eT>
arma::SpMat<eT> compressed_columns(const std::vector<arma::uword>& bi,
                                   const std::vector<arma::uword>& bj, const std::vector<eT>& bv,
                                   arma::uword n_rows, arma::uword n_cols) {
  const std::size_t n = bv.size();
  // Counting sort by column (stable), then a stable sort by row in each.
  arma::uvec colptr(n_cols + 1, arma::fill::zeros);
  for (std::size_t e = 0; e < n; ++e) ++colptr[bj[e] + 1];
  for (arma::uword c = 0; c < n_cols; ++c) colptr[c + 1] += colptr[c];
  std::vector<std::size_t> order(n);
  for (std::size_t e = 0; e < n; ++e) order[colptr[bj[e]]++] = e;
  for (arma::uword c = n_cols; c > 0; --c) colptr[c] = colptr[c - 1];
  colptr[0] = 0;

  arma::uvec rowind(n);
  arma::Col<eT> values(n);
  std::size_t out = 0;
  for (arma::uword c = 0; c < n_cols; ++c) {
    const auto first = order.begin() + std::ptrdiff_t(colptr[c]);
    const auto last = order.begin() + std::ptrdiff_t(colptr[c + 1]);
    std::stable_sort(first, last, [&](std::size_t a, std::size_t b) { return bi[a] < bi[b]; });
    colptr[c] = out;
    for (auto it = first; it != last;) {
      const arma::uword r = bi[*it];
      eT sum = bv[*it];
      for (++it; it != last && bi[*it] == r; ++it) sum += bv[*it];
      rowind[out] = r;
      values[out] = sum;
      ++out;
    }
  }
  colptr[n_cols] = out;
  rowind.resize(out);
  values.resize(out);
  return arma::SpMat<eT>(rowind, colptr, values, n_rows, n_cols);
}

}  // namespace detail

// Reads and checks the banner and the size line.
inline MtxHeader read_mtx_header(const std::string& path) {
  detail::MtxScanner scan(path);
  return scan.header();
}

// The entries of rows [rows.first, rows.first + rows.count) x the range of
// columns, as a rows.count x cols.count sparse matrix. Every index is checked
// against the declared size and the number of entries against the declared
// count; a symmetric file's off-diagonal entries are mirrored. Duplicate
// entries are summed (as scipy does).
template <typename eT>
arma::SpMat<eT> read_mtx_block(const MtxHeader& h, comm::Range rows, comm::Range cols) {
  if (rows.count > h.rows || rows.first > h.rows - rows.count || cols.count > h.cols ||
      cols.first > h.cols - cols.count)
    throw std::invalid_argument(
        "unmix::io::read_mtx_block: the block rows [" + std::to_string(rows.first) + ", " +
        std::to_string(rows.first + rows.count) + ") x cols [" + std::to_string(cols.first) + ", " +
        std::to_string(cols.first + cols.count) + ") must lie inside the " + std::to_string(h.rows) +
        " x " + std::to_string(h.cols) + " matrix of '" + h.path + "'");
  detail::MtxScanner scan(h.path);
  const MtxHeader again = scan.header();
  if (again.rows != h.rows || again.cols != h.cols || again.entries != h.entries)
    throw std::runtime_error("unmix::io::read_mtx: '" + h.path + "' changed while it was read");

  std::vector<arma::uword> bi, bj;
  std::vector<eT> bv;
  auto keep = [&](arma::uword i, arma::uword j, double v) {
    if constexpr (sizeof(eT) < sizeof(double))
      if (std::isfinite(v) && std::abs(v) > double(std::numeric_limits<eT>::max()))
        scan.invalid("the value " + detail::number_text(v) +
                     " is outside the float32 range (magnitude <= 3.4e38): read it as float64");
    if (i >= rows.first && i < rows.first + rows.count && j >= cols.first &&
        j < cols.first + cols.count) {
      bi.push_back(i - rows.first);
      bj.push_back(j - cols.first);
      bv.push_back(static_cast<eT>(v));
    }
  };
  try {
    std::uint64_t found = 0;
    arma::uword i = 0, j = 0;
    double v = 0;
    while (scan.entry(h, i, j, v)) {
      if (++found > h.entries)
        scan.invalid("more entries than the " + std::to_string(h.entries) +
                     " the size line declares");
      keep(i, j, v);
      if (h.symmetric && i != j) keep(j, i, v);
    }
    if (found < h.entries)
      throw std::invalid_argument("unmix::io::read_mtx: '" + h.path + "' has " +
                                  std::to_string(found) + " entries, the size line declares " +
                                  std::to_string(h.entries) + " (is the file truncated?)");
    return detail::compressed_columns(bi, bj, bv, rows.count, cols.count);
  } catch (const std::bad_alloc&) {
    // Sparse sizes are not bounded by the file: a size line may declare more
    // columns than memory can index.
    throw std::runtime_error(
        "unmix::io::read_mtx: '" + h.path + "': out of memory for its " +
        std::to_string(rows.count) + " x " + std::to_string(cols.count) + " block (" +
        std::to_string(bv.size()) + " entries; the column index alone takes " +
        std::to_string((std::uint64_t(cols.count) + 1) * sizeof(arma::uword)) +
        " bytes); the size line declares " + std::to_string(h.rows) + " x " +
        std::to_string(h.cols));
  }
}

}  // namespace unmix::io
