#include "report.h"

#include <fmt/format.h>

#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdio>

namespace parley::bench {

namespace {

// Doubles with three decimals (not 1.2345E3); the values are numbers, strings, null, or
// (per node, with several --url) arrays of numbers.
std::string scalar(const boost::json::value& v) {
  if (v.is_double()) {
    double d = v.get_double();
    return std::isfinite(d) ? fmt::format("{:.3f}", d) : "null";
  }
  if (v.is_array()) {
    std::string s = "[";
    for (const auto& e : v.get_array()) {
      if (s.size() > 1) s += ',';
      s += scalar(e);
    }
    return s + ']';
  }
  return boost::json::serialize(v);
}

}  // namespace

void print_report(const boost::json::object& results, bool json) {
  for (const auto& kv : results) {
    const auto& v = kv.value();
    std::string text = v.is_string() ? std::string(v.get_string()) : scalar(v);
    std::fprintf(stdout, "%-24s %s\n", std::string(kv.key()).c_str(), text.c_str());
  }
  if (json) {
    std::string line = "{";
    for (const auto& kv : results) {
      if (line.size() > 1) line += ',';
      line += boost::json::serialize(boost::json::string(kv.key()));
      line += ':';
      line += scalar(kv.value());
    }
    line += '}';
    std::fprintf(stdout, "%s\n", line.c_str());
  }
  std::fflush(stdout);
}

}  // namespace parley::bench
