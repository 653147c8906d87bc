#pragma once
// Error messages name the parameter, what was expected and what was given.
#include <sstream>
#include <stdexcept>
#include <string>

namespace unmix {

template <typename Given>
[[noreturn]] void throw_invalid(const std::string& where, const std::string& param,
                                const std::string& expected, const Given& given) {
  std::ostringstream msg;
  msg << where << ": " << param << " must be " << expected << ", got " << given;
  throw std::invalid_argument(msg.str());
}

}  // namespace unmix
