#include "json_reader.h"

namespace parley::bench {

namespace json = boost::json;

JsonReader::JsonReader()
    : arena_(new unsigned char[kArena]),
      stack_(new unsigned char[kStack]),
      resource_(arena_.get(), kArena),
      parser_(json::storage_ptr(), json::parse_options(), stack_.get(), kStack) {}

const json::value* JsonReader::parse(std::string_view text) {
  value_.reset();
  resource_.release();  // back to the start of the arena; frees any overflow blocks
  parser_.reset(json::storage_ptr(&resource_));
  boost::system::error_code ec;
  parser_.write(text.data(), text.size(), ec);
  if (ec) {
    parser_.reset();
    return nullptr;
  }
  value_.emplace(parser_.release());
  return &*value_;
}

uint64_t get_u64(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
  return 0;
}

std::string_view get_str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return {};
  const auto& s = v->get_string();
  return {s.data(), s.size()};
}

const json::object* get_obj(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

}  // namespace parley::bench
