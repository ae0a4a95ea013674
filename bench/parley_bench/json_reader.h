// Parses server frames with Boost.JSON into a per-thread arena: the parser's stack and the
// parsed value live in buffers that are reused frame after frame, so that a typical frame
// (an ack or a push, well under the arena size) costs no heap allocation.
#pragma once

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <optional>
#include <string_view>

namespace parley::bench {

class JsonReader {
 public:
  JsonReader();
  // The parsed frame, valid until the next call; nullptr if `text` is not JSON.
  const boost::json::value* parse(std::string_view text);

 private:
  static constexpr size_t kArena = 256 * 1024;
  static constexpr size_t kStack = 4096;
  std::unique_ptr<unsigned char[]> arena_;
  std::unique_ptr<unsigned char[]> stack_;
  boost::json::monotonic_resource resource_;
  boost::json::parser parser_;
  std::optional<boost::json::value> value_;
};

// Field accessors that tolerate a missing or mistyped field (0 / empty).
uint64_t get_u64(const boost::json::object& o, std::string_view key);
std::string_view get_str(const boost::json::object& o, std::string_view key);
const boost::json::object* get_obj(const boost::json::object& o, std::string_view key);

}  // namespace parley::bench
