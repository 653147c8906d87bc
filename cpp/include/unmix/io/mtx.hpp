#pragma once
// MatrixMarket coordinate files (.mtx): real, integer or pattern entries,
// general or symmetric. Text cannot be entered at an offset, so every
// reader parses the whole file and keeps the entries of its own block; the
// memory held is only the block's.
#include <armadillo>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../comm/split.hpp"

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
    in_.open(path);
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
              line_ + "'");
    if (lower(format) != "coordinate")
      invalid("only the coordinate (sparse) MatrixMarket format is supported, got '" + format +
              "' (save dense data as .npy)");
    field = lower(field);
    if (field == "real" || field == "double")
      h.field = MtxHeader::Field::real;
    else if (field == "integer")
      h.field = MtxHeader::Field::integer;
    else if (field == "pattern")
      h.field = MtxHeader::Field::pattern;
    else
      invalid("the field must be real, integer or pattern, got '" + field + "'");
    symmetry = lower(symmetry);
    if (symmetry == "general")
      h.symmetric = false;
    else if (symmetry == "symmetric")
      h.symmetric = true;
    else
      invalid("the symmetry must be general or symmetric, got '" + symmetry + "'");

    if (!next_line(true)) invalid("the size line 'rows cols entries' is missing");
    std::istringstream size(line_);
    long long r = -1, c = -1, nz = -1;
    std::string rest;
    if (!(size >> r >> c >> nz) || (size >> rest) || r < 0 || c < 0 || nz < 0)
      invalid("expected the size line 'rows cols entries' (three non-negative integers), got '" +
              line_ + "'");
    h.rows = arma::uword(r);
    h.cols = arma::uword(c);
    h.entries = std::uint64_t(nz);
    if (h.symmetric && h.rows != h.cols)
      invalid("a symmetric matrix must be square, got " + std::to_string(r) + " x " +
              std::to_string(c));
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
      if (end == p) invalid("expected a value after the indices, got '" + line_ + "'");
      p = end;
    }
    while (*p != '\0' && std::isspace(static_cast<unsigned char>(*p))) ++p;
    if (*p != '\0') invalid("unexpected text after the entry: '" + line_ + "'");
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
      invalid(std::string("expected a ") + what + " index (a positive integer), got '" + line_ + "'");
    return v;
  }

  std::string path_;
  std::ifstream in_;
  std::string line_;
  std::uint64_t line_no_ = 0;
};

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
  if (rows.first + rows.count > h.rows || cols.first + cols.count > h.cols)
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
    if (i >= rows.first && i < rows.first + rows.count && j >= cols.first &&
        j < cols.first + cols.count) {
      bi.push_back(i - rows.first);
      bj.push_back(j - cols.first);
      bv.push_back(static_cast<eT>(v));
    }
  };
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

  arma::umat locations(2, bi.size());
  for (std::size_t e = 0; e < bi.size(); ++e) {
    locations(0, e) = bi[e];
    locations(1, e) = bj[e];
  }
  const arma::Col<eT> values(bv.data(), bv.size());
  return arma::SpMat<eT>(true, locations, values, rows.count, cols.count);
}

}  // namespace unmix::io
