#pragma once
// The JSON summary writer.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include "team.hpp"

namespace unmix_nmf {

// ---------------------------------------------------------------- the summary

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";  // JSON has no NaN or infinity
  // The shortest of %.15g .. %.17g that reads back as x (1e-05, not
  // 1.0000000000000001e-05).
  char buf[32];
  for (int digits = 15; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_array(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_number(v[i]);
  return out + "]";
}

// Key-value pairs in the order added, one per line.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, const std::string& raw_value) {
    items_.push_back(json_string(key) + ": " + raw_value);
    return *this;
  }
  JsonObject& add(const std::string& key, double x) { return add(key, json_number(x)); }
  JsonObject& add_int(const std::string& key, long long x) { return add(key, std::to_string(x)); }
  JsonObject& add_bool(const std::string& key, bool x) { return add(key, x ? "true" : "false"); }
  JsonObject& add_str(const std::string& key, const std::string& x) { return add(key, json_string(x)); }
  std::string str(const std::string& indent = "") const {
    std::string out = "{";
    for (std::size_t i = 0; i < items_.size(); ++i)
      out += (i ? ",\n" : "\n") + indent + "  " + items_[i];
    return out + "\n" + indent + "}";
  }

 private:
  std::vector<std::string> items_;
};

}  // namespace unmix_nmf
