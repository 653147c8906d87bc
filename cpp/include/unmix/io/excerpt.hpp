#pragma once
// Quoting a file's content in an error message. A damaged file may hold
// anything — binary bytes, megabytes without a newline — and the message
// must stay one short line of plain text.
#include <cstddef>
#include <cstdio>
#include <string>

namespace unmix::io::detail {

// `text` as printable ASCII: other bytes become \xNN, and past `max`
// characters the rest is summarized as "... (N more bytes)".
inline std::string excerpt(const std::string& text, std::size_t max = 120) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  std::size_t i = 0;
  for (; i < text.size() && out.size() < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += char(c);
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (i < text.size()) out += "... (" + std::to_string(text.size() - i) + " more bytes)";
  return out;
}

// A number as a message shows it (std::to_string writes 1e300 with 300 digits).
inline std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace unmix::io::detail
