#pragma once
// Writing a file so that readers never see half of it: a crashed or killed
// run leaves either the old file or the new one, not a truncated result that
// a later analysis would load without complaint.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace unmix::io {

namespace detail {

// A name next to the target: std::rename is atomic only within one file
// system, and a unique suffix keeps concurrent writers apart.
inline std::filesystem::path temp_name(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  const unsigned long long tag =
      static_cast<unsigned long long>(now) ^ (static_cast<unsigned long long>(++counter) << 48) ^
      reinterpret_cast<std::uintptr_t>(&counter);
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, ".tmp-%016llx", tag);
  std::filesystem::path tmp = target;
  tmp.replace_filename("." + target.filename().string() + suffix);
  return tmp;
}

}  // namespace detail

// Calls write(stream) on a temporary file in the target's folder, then
// renames it over `path`. Throws std::runtime_error naming the file when the
// folder is missing, the disk is full, or the rename fails.
template <typename Writer>
void write_atomically(const std::string& path, Writer&& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.filename().empty())
    throw std::invalid_argument("unmix::io: output path must name a file, got '" + path + "'");
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw std::runtime_error("unmix::io: cannot write '" + path + "': folder '" + folder.string() +
                             "' does not exist");
  const fs::path tmp = detail::temp_name(target);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw std::runtime_error("unmix::io: cannot write '" + path + "': cannot create '" +
                               tmp.string() + "' (" + std::strerror(errno) + ")");
    try {
      write(out);
    } catch (...) {
      out.close();
      fs::remove(tmp, ec);
      throw;
    }
    out.flush();
    if (!out) {
      out.close();
      fs::remove(tmp, ec);
      throw std::runtime_error("unmix::io: writing '" + path + "' failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    fs::remove(tmp, ec);
    throw std::runtime_error("unmix::io: cannot write '" + path + "': renaming '" + tmp.string() +
                             "' failed (" + why + ")");
  }
}

}  // namespace unmix::io
