#pragma once
// The one source of the version: CMake and the Python build both read the
// string below with a regular expression, so keep it on one line.
#define UNMIX_VERSION_STRING "0.1.0"

namespace unmix {
inline constexpr const char* version = UNMIX_VERSION_STRING;
}  // namespace unmix
