#pragma once
// Writing a file so that readers never see half of it: a crashed or killed
// run leaves either the old file or the new one, not a truncated result that
// a later analysis would load without complaint.
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#endif

namespace unmix::io {

namespace detail {

constexpr const char* temp_tag = ".tmp-";
constexpr std::size_t temp_hex_digits = 16;

// A name next to the target: std::rename is atomic only within one file
// system, and a unique suffix keeps concurrent writers apart.
inline std::filesystem::path temp_name(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  const unsigned long long tag =
      static_cast<unsigned long long>(now) ^ (static_cast<unsigned long long>(++counter) << 48) ^
      reinterpret_cast<std::uintptr_t>(&counter);
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, "%s%0*llx", temp_tag, int(temp_hex_digits), tag);
  std::filesystem::path tmp = target;
  tmp.replace_filename("." + target.filename().string() + suffix);
  return tmp;
}

// Without these a crash of the machine (not of the program) shortly after
// the rename can leave the new name pointing at a file whose data never
// reached the disk: an empty or partly zero "finished" file.
inline void sync_file(const std::filesystem::path& file, const std::string& path) {
#if defined(__unix__) || defined(__APPLE__)
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("unmix::io: cannot write '" + path + "': syncing '" + file.string() +
                             "' to disk failed (" + why + ")");
  }
  ::close(fd);
#else
  (void)file, (void)path;
#endif
}

// The rename itself is durable only once the folder is synced. Best effort:
// some file systems cannot sync a folder, and the file is complete anyway.
inline void sync_folder(const std::filesystem::path& folder) {
#if defined(__unix__) || defined(__APPLE__)
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
#else
  (void)folder;
#endif
}

}  // namespace detail

// The file name a temporary of write_atomically stands for ("run_W.npy" for
// ".run_W.npy.tmp-0123456789abcdef"), or "" when `name` is not one. A write
// killed midway leaves its temporary behind; a program that knows which
// targets are its own can remove them when it starts again.
inline std::string temporary_target(const std::string& name) {
  const std::size_t tag = name.rfind(detail::temp_tag);
  const std::size_t digits = tag + std::strlen(detail::temp_tag);
  if (name.size() < 2 || name[0] != '.' || tag == std::string::npos || tag < 2 ||
      name.size() - digits != detail::temp_hex_digits)
    return "";
  for (std::size_t i = digits; i < name.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(name[i])) ||
        std::isupper(static_cast<unsigned char>(name[i])))
      return "";
  return name.substr(1, tag - 1);
}

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
    out.close();
    if (!out) {
      fs::remove(tmp, ec);
      throw std::runtime_error("unmix::io: writing '" + path + "' failed (disk full?)");
    }
  }
  try {
    detail::sync_file(tmp, path);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    fs::remove(tmp, ec);
    throw std::runtime_error("unmix::io: cannot write '" + path + "': renaming '" + tmp.string() +
                             "' failed (" + why + ")");
  }
  detail::sync_folder(folder);
}

}  // namespace unmix::io
