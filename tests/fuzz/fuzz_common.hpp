#pragma once
// What every fuzz target shares: a scratch file per process (the readers
// take paths), and the rule a reader must keep on any input — return a
// result or throw std::invalid_argument / std::runtime_error whose message
// names the file and is plain text. Anything else (another exception type,
// a message without the file, a crash, a sanitizer report, a hang) is a
// finding: the target aborts and libFuzzer keeps the input.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unistd.h>

namespace unmix_fuzz {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "\nunmix fuzz property violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// One file per process, reused for every input: in $UNMIX_FUZZ_SCRATCH
// (tools/fuzz sets it), else in /dev/shm when there is one (the fuzzer
// writes it thousands of times a second). A crash leaves it behind.
inline std::string scratch_path(const std::string& extension) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const char* given = std::getenv("UNMIX_FUZZ_SCRATCH");
  const fs::path folder = given && *given                    ? fs::path(given)
                          : fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                             : fs::temp_directory_path();
  return (folder / ("unmix_fuzz_" + std::to_string(::getpid()) + extension)).string();
}

inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  out.close();
  if (!out) fail("cannot write the scratch file " + path);
}

// Removes the scratch file when the process ends normally.
struct ScratchFile {
  std::string path;
  explicit ScratchFile(const std::string& extension) : path(scratch_path(extension)) {}
  ~ScratchFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

inline void check_message(const char* type, const std::string& message, const std::string& source) {
  if (message.find(source) == std::string::npos)
    fail(std::string(type) + " without the file name '" + source + "': " + message);
  if (message.size() > source.size() + 1500)
    fail(std::string(type) + " with a message of " + std::to_string(message.size()) + " bytes");
  for (const unsigned char c : message)
    if (c < 0x20 || c > 0x7e)
      fail(std::string(type) + " with a non-printable byte " + std::to_string(int(c)) +
           " in its message: " + message);
}

// Runs fn; the documented errors are fine when their message is clear.
template <typename Fn>
void expect_clean(const std::string& source, Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    check_message("std::invalid_argument", e.what(), source);
  } catch (const std::runtime_error& e) {
    check_message("std::runtime_error", e.what(), source);
  } catch (const std::exception& e) {
    fail(std::string("unexpected exception ") + typeid(e).name() + ": " + e.what());
  } catch (...) {
    fail("an exception that is not a std::exception");
  }
}

// Equal, counting NaN equal to NaN.
inline bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

}  // namespace unmix_fuzz
