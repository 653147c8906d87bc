#pragma once
// NumPy .npy files of 2-D float64 / float32 arrays: the header (format
// versions 1.0, 2.0 and 3.0), a block read by file offsets so that a rank
// reads only the part of the matrix it holds, and an atomic writer.
//
// With UNMIX_HAS_MPI and MPI initialized, blocks are read through MPI-IO on
// MPI_COMM_SELF (parallel file systems serve MPI-IO better than stdio);
// otherwise through std::ifstream. Neither path ever reads the whole file.
#include <armadillo>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#ifdef UNMIX_HAS_MPI
#include <mpi.h>
#endif

#include "../comm/split.hpp"
#include "atomic_file.hpp"
#include "excerpt.hpp"

namespace unmix::io {

// What the header of a .npy file says.
struct NpyHeader {
  std::string path;
  std::string descr;               // "<f8" or "<f4"
  unsigned word = 8;               // bytes per element
  bool fortran_order = false;      // column-major on disk
  arma::uword rows = 0, cols = 0;  // the shape as stored
  std::uint64_t data_offset = 0;   // bytes before the first element
  int version = 1;                 // format major version

  std::string dtype() const { return word == 4 ? "float32" : "float64"; }
};

namespace detail {

[[noreturn]] inline void npy_invalid(const std::string& path, const std::string& what) {
  throw std::invalid_argument("unmix::io::read_npy: '" + path + "' " + what);
}

inline bool little_endian_host() {
  const std::uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// .npy data is little-endian ('<'); big-endian hosts swap after reading.
template <typename T>
void swap_bytes(T* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, p + i, sizeof(T));
    for (std::size_t j = 0; j < sizeof(T) / 2; ++j) std::swap(b[j], b[sizeof(T) - 1 - j]);
    std::memcpy(p + i, b, sizeof(T));
  }
}

// The header is a Python dict literal, e.g.
//   {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
// Only the three keys numpy writes are accepted; anything else is reported.
class NpyDictParser {
 public:
  NpyDictParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  void parse(NpyHeader& h) {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    std::vector<std::uint64_t> shape;
    expect('{');
    while (!eat('}')) {
      const std::string key = quoted();
      expect(':');
      if (key == "descr") {
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '[')
          npy_invalid(path_, "has an unsupported dtype (a structured array): expected float64 "
                             "('<f8') or float32 ('<f4')");
        h.descr = quoted();
        seen_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        seen_order = true;
      } else if (key == "shape") {
        shape = tuple();
        seen_shape = true;
      } else {
        malformed("unknown key '" + excerpt(key, 40) + "'");
      }
      if (!eat(',')) {
        expect('}');
        break;
      }
    }
    if (!seen_descr || !seen_order || !seen_shape)
      malformed("a key is missing (expected 'descr', 'fortran_order' and 'shape')");

    if (h.descr == "<f8") {
      h.word = 8;
    } else if (h.descr == "<f4") {
      h.word = 4;
    } else {
      std::string hint;
      if (h.descr.size() == 3 && h.descr[0] == '>' && h.descr[1] == 'f')
        hint = " (big-endian; save with X.astype('<f8'))";
      else
        hint = " (convert with X.astype(np.float64) before saving)";
      npy_invalid(path_, "has an unsupported dtype: expected float64 ('<f8') or float32 ('<f4'), "
                         "got '" + excerpt(h.descr, 40) + "'" + hint);
    }
    if (shape.size() != 2) {
      std::string given = "(";
      for (std::size_t i = 0; i < shape.size() && i < 6; ++i)
        given += (i ? ", " : "") + std::to_string(shape[i]);
      given += shape.size() > 6 ? ", ...)" : shape.size() == 1 ? ",)" : ")";
      npy_invalid(path_, "must hold a 2-D array (n_samples, n_features), got shape " + given +
                             " (" + std::to_string(shape.size()) + "-D)");
    }
    h.rows = arma::uword(shape[0]);
    h.cols = arma::uword(shape[1]);
  }

 private:
  [[noreturn]] void malformed(const std::string& what) const {
    npy_invalid(path_, "has a malformed header: " + what + " in \"" + excerpt(s_) + "\"");
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) malformed(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
  }
  std::string quoted() {
    skip_ws();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"'))
      malformed("expected a quoted string at offset " + std::to_string(pos_));
    const char q = s_[pos_++];
    const std::size_t end = s_.find(q, pos_);
    if (end == std::string::npos) malformed("unterminated string");
    std::string out = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_ws();
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    malformed("expected True or False for 'fortran_order'");
  }
  std::vector<std::uint64_t> tuple() {
    std::vector<std::uint64_t> out;
    expect('(');
    while (!eat(')')) {
      skip_ws();
      const char* begin = s_.c_str() + pos_;
      char* end = nullptr;
      errno = 0;
      const unsigned long long v = std::strtoull(begin, &end, 10);
      if (end == begin || *begin == '-' || errno == ERANGE) malformed("expected a size in 'shape'");
      pos_ += std::size_t(end - begin);
      out.push_back(v);
      if (!eat(',')) {
        expect(')');
        break;
      }
    }
    return out;
  }

  const std::string& s_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

// Positional reads of raw bytes.
class RawReader {
 public:
  explicit RawReader(const std::string& path) : path_(path) {
#ifdef UNMIX_HAS_MPI
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) {
      // MPI_COMM_SELF: each rank opens on its own, so one rank's failure
      // cannot leave the others waiting in a collective open.
      const int rc = MPI_File_open(MPI_COMM_SELF, path.c_str(), MPI_MODE_RDONLY, MPI_INFO_NULL, &fh_);
      if (rc != MPI_SUCCESS) {
        fh_ = MPI_FILE_NULL;
        throw std::runtime_error("unmix::io::read_npy: cannot open '" + path +
                                 "' with MPI-IO (" + mpi_error(rc) + ")");
      }
      use_mpi_ = true;
      return;
    }
#endif
    in_.open(path, std::ios::binary);
    if (!in_)
      throw std::runtime_error("unmix::io::read_npy: cannot open '" + path + "' for reading (" +
                               std::strerror(errno) + ")");
  }
  ~RawReader() {
#ifdef UNMIX_HAS_MPI
    if (use_mpi_) MPI_File_close(&fh_);
#endif
  }
  RawReader(const RawReader&) = delete;
  RawReader& operator=(const RawReader&) = delete;

  const std::string& path() const { return path_; }

  void read(std::uint64_t offset, char* dst, std::uint64_t bytes) {
    // MPI counts are int: go in pieces well below 2 GiB.
    constexpr std::uint64_t piece = std::uint64_t(1) << 30;
    while (bytes > 0) {
      const std::uint64_t now = std::min(bytes, piece);
      std::uint64_t got = 0;
#ifdef UNMIX_HAS_MPI
      if (use_mpi_) {
        MPI_Status status;
        const int rc = MPI_File_read_at(fh_, MPI_Offset(offset), dst, int(now), MPI_BYTE, &status);
        if (rc != MPI_SUCCESS)
          throw std::runtime_error("unmix::io::read_npy: reading '" + path_ + "' failed (" +
                                   mpi_error(rc) + ")");
        int count = 0;
        MPI_Get_count(&status, MPI_BYTE, &count);
        got = std::uint64_t(count);
      } else
#endif
      {
        in_.seekg(std::streamoff(offset));
        in_.read(dst, std::streamsize(now));
        got = std::uint64_t(in_.gcount());
        in_.clear();
      }
      if (got != now)
        throw std::runtime_error("unmix::io::read_npy: '" + path_ + "' ended at byte " +
                                 std::to_string(offset + got) + " while reading " +
                                 std::to_string(now) + " bytes at " + std::to_string(offset) +
                                 " (was the file truncated while reading?)");
      offset += now;
      dst += now;
      bytes -= now;
    }
  }

 private:
#ifdef UNMIX_HAS_MPI
  static std::string mpi_error(int rc) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return std::string(text, std::size_t(len));
  }
  MPI_File fh_ = MPI_FILE_NULL;
  bool use_mpi_ = false;
#endif
  std::string path_;
  std::ifstream in_;
};

// n elements of the file's type F at `offset`, converted to eT.
template <typename F, typename eT>
void read_elements(RawReader& file, std::uint64_t offset, eT* dst, std::size_t n) {
  if constexpr (std::is_same_v<F, eT>) {
    file.read(offset, reinterpret_cast<char*>(dst), std::uint64_t(n) * sizeof(F));
    if (!little_endian_host()) swap_bytes(dst, n);
  } else {
    constexpr std::size_t chunk = std::size_t(1) << 20;
    std::vector<F> buf(std::min(n, chunk));
    for (std::size_t done = 0; done < n;) {
      const std::size_t now = std::min(n - done, chunk);
      file.read(offset + std::uint64_t(done) * sizeof(F), reinterpret_cast<char*>(buf.data()),
                std::uint64_t(now) * sizeof(F));
      if (!little_endian_host()) swap_bytes(buf.data(), now);
      for (std::size_t i = 0; i < now; ++i) {
        // float64 -> float32: a finite value out of float32's range would
        // become infinity (and the data then be refused as non-finite).
        if constexpr (sizeof(F) > sizeof(eT))
          if (std::isfinite(buf[i]) && std::abs(buf[i]) > F(std::numeric_limits<eT>::max()))
            throw std::invalid_argument(
                "unmix::io::read_npy: '" + file.path() + "' holds the value " +
                number_text(double(buf[i])) + " (at byte " +
                std::to_string(offset + std::uint64_t(done + i) * sizeof(F)) +
                "), outside the float32 range (magnitude <= 3.4e38): read it as float64");
        dst[done + i] = static_cast<eT>(buf[i]);
      }
      done += now;
    }
  }
}

// The longest header accepted (format 1.0's limit).
constexpr std::uint64_t npy_max_header = 65535;

inline std::uint64_t read_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace detail

// Reads and checks the header of a .npy file. Throws std::runtime_error when
// the file is missing or unreadable, std::invalid_argument when it is not a
// .npy file, holds an unsupported dtype or shape, or is shorter than its
// header says.
inline NpyHeader read_npy_header(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st))
    throw std::runtime_error("unmix::io::read_npy: '" + path + "': file not found");
  if (fs::is_directory(st))
    throw std::runtime_error("unmix::io::read_npy: '" + path + "' is a folder, not a .npy file");
  // Sizes are checked against the file's: a pipe or device has none.
  if (!fs::is_regular_file(st))
    throw std::runtime_error("unmix::io::read_npy: '" + path +
                             "' is not a regular file (a pipe or a device?): expected a .npy file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("unmix::io::read_npy: cannot open '" + path + "' for reading (" +
                             std::strerror(errno) + ")");
  const std::uint64_t size = fs::file_size(path, ec);
  if (ec)
    throw std::runtime_error("unmix::io::read_npy: cannot find the size of '" + path + "' (" +
                             ec.message() + ")");

  NpyHeader h;
  h.path = path;
  unsigned char pre[12] = {};
  in.read(reinterpret_cast<char*>(pre), 8);
  if (in.gcount() < 8 || std::memcmp(pre, "\x93NUMPY", 6) != 0)
    detail::npy_invalid(path, "is not a .npy file: it does not start with the magic string "
                              "\\x93NUMPY");
  const int major = pre[6], minor = pre[7];
  if (major < 1 || major > 3 || minor != 0)
    detail::npy_invalid(path, "has an unsupported .npy format version " + std::to_string(major) +
                              "." + std::to_string(minor) + ": expected 1.0, 2.0 or 3.0");
  h.version = major;
  const int len_bytes = major == 1 ? 2 : 4;
  in.read(reinterpret_cast<char*>(pre + 8), len_bytes);
  if (in.gcount() < len_bytes) detail::npy_invalid(path, "is truncated inside its header");
  const std::uint64_t header_len = detail::read_le(pre + 8, len_bytes);
  // numpy writes about 128 bytes for a 2-D float array; only structured
  // dtypes (refused anyway) need more than format 1.0's 64 KiB.
  if (header_len > detail::npy_max_header)
    detail::npy_invalid(path, "is corrupted: its header length field says " +
                              std::to_string(header_len) + " bytes, more than the " +
                              std::to_string(detail::npy_max_header) +
                              " a 2-D float64/float32 array's header can take");
  if (header_len > size)
    detail::npy_invalid(path, "is truncated: its header says " + std::to_string(header_len) +
                              " bytes of header text, the file has " + std::to_string(size) +
                              " bytes");
  std::string text(std::size_t(header_len), '\0');
  in.read(text.data(), std::streamsize(header_len));
  if (std::uint64_t(in.gcount()) < header_len)
    detail::npy_invalid(path, "is truncated inside its header");
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\0'))
    text.pop_back();
  detail::NpyDictParser(text, path).parse(h);
  h.data_offset = 8 + std::uint64_t(len_bytes) + header_len;

  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t rows = h.rows, cols = h.cols;
  if (cols != 0 && rows > limit / cols / h.word)
    detail::npy_invalid(path, "declares an impossibly large shape (" + std::to_string(rows) +
                              ", " + std::to_string(cols) + ")");
  const std::uint64_t data_bytes = rows * cols * h.word;
  if (h.data_offset > size || data_bytes > size - h.data_offset)
    detail::npy_invalid(path, "is truncated: its header declares a " + std::to_string(rows) +
                              " x " + std::to_string(cols) + " " + h.dtype() + " array (" +
                              std::to_string(data_bytes) + " bytes of data after " +
                              std::to_string(h.data_offset) + " bytes of header), the file has " +
                              std::to_string(size) + " bytes");
  return h;
}

// Reads rows [rows.first, rows.first + rows.count) and the same range of
// columns of the matrix as stored (shape h.rows x h.cols), converting to eT.
// Returns that block, or its transpose when `transpose` is true. A C-ordered
// file holds the transpose of each block column by column, so asking for the
// transpose of a C-ordered block (or the block of a Fortran-ordered one)
// reads straight into the result; whole columns are read as one run.
template <typename eT>
arma::Mat<eT> read_npy_block(const NpyHeader& h, comm::Range rows, comm::Range cols,
                             bool transpose = false) {
  static_assert(std::is_same_v<eT, double> || std::is_same_v<eT, float>,
                "unmix::io::read_npy_block reads float64 or float32 matrices");
  if (rows.count > h.rows || rows.first > h.rows - rows.count || cols.count > h.cols ||
      cols.first > h.cols - cols.count)
    throw std::invalid_argument(
        "unmix::io::read_npy_block: the block rows [" + std::to_string(rows.first) + ", " +
        std::to_string(rows.first + rows.count) + ") x cols [" + std::to_string(cols.first) + ", " +
        std::to_string(cols.first + cols.count) + ") must lie inside the " + std::to_string(h.rows) +
        " x " + std::to_string(h.cols) + " array of '" + h.path + "'");
  // The file is a column-major matrix V: the array itself (Fortran order)
  // or its transpose (C order). Read the block of V, column by column.
  const std::uint64_t v_rows = h.fortran_order ? h.rows : h.cols;
  const comm::Range br = h.fortran_order ? rows : cols;
  const comm::Range bc = h.fortran_order ? cols : rows;
  arma::Mat<eT> B(br.count, bc.count);
  if (B.n_elem > 0) {
    detail::RawReader file(h.path);
    auto run = [&](arma::uword col, std::size_t n) {
      const std::uint64_t offset =
          h.data_offset + ((std::uint64_t(bc.first) + col) * v_rows + br.first) * h.word;
      eT* dst = B.colptr(col);
      if (h.word == 8)
        detail::read_elements<double>(file, offset, dst, n);
      else
        detail::read_elements<float>(file, offset, dst, n);
    };
    if (br.count == v_rows)
      run(0, B.n_elem);
    else
      for (arma::uword j = 0; j < bc.count; ++j) run(j, br.count);
  }
  // B is the block (Fortran order) or its transpose (C order). (Armadillo's
  // transpose of an empty n x 0 matrix forms a reference through a null
  // pointer, so empty blocks are made directly.)
  if (h.fortran_order == transpose)
    return B.n_elem == 0 ? arma::Mat<eT>(B.n_cols, B.n_rows) : arma::Mat<eT>(B.t());
  return B;
}

// The whole array as stored.
template <typename eT>
arma::Mat<eT> read_npy(const std::string& path) {
  const NpyHeader h = read_npy_header(path);
  return read_npy_block<eT>(h, {0, h.rows}, {0, h.cols});
}

// Writes A as a 2-D .npy array (format 1.0) of A's dtype, in C order
// (numpy's default) or Fortran order, atomically: the file appears complete
// or not at all.
template <typename eT>
void write_npy(const std::string& path, const arma::Mat<eT>& A, bool fortran_order = false) {
  static_assert(std::is_same_v<eT, double> || std::is_same_v<eT, float>,
                "unmix::io::write_npy writes float64 or float32 matrices");
  std::string dict = std::string("{'descr': '") + (sizeof(eT) == 8 ? "<f8" : "<f4") +
                     "', 'fortran_order': " + (fortran_order ? "True" : "False") +
                     ", 'shape': (" + std::to_string(A.n_rows) + ", " + std::to_string(A.n_cols) +
                     "), }";
  // numpy pads the header with spaces so that the data starts on a 64-byte
  // boundary, which lets readers map the file and use aligned loads.
  const std::size_t preamble = 10;
  const std::size_t total = ((preamble + dict.size() + 1 + 63) / 64) * 64;
  dict.append(total - preamble - dict.size() - 1, ' ');
  dict.push_back('\n');
  const std::size_t len = dict.size();

  // Fortran order is arma's own layout; C order is the transpose's layout.
  arma::Mat<eT> swapped;
  const arma::Mat<eT>* src = &A;
  if (!fortran_order) {
    swapped = A.t();
    src = &swapped;
  }
  if (!detail::little_endian_host()) {
    if (src == &A) swapped = A;
    detail::swap_bytes(swapped.memptr(), swapped.n_elem);
    src = &swapped;
  }
  write_atomically(path, [&](std::ostream& out) {
    const unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                    static_cast<unsigned char>(len & 0xff),
                                    static_cast<unsigned char>(len >> 8)};
    out.write(reinterpret_cast<const char*>(head), sizeof head);
    out << dict;
    out.write(reinterpret_cast<const char*>(src->memptr()),
              std::streamsize(src->n_elem * sizeof(eT)));
  });
}

}  // namespace unmix::io
