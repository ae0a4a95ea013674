#include "support/json_util.h"

#include <stdexcept>

namespace parley::test {
namespace json = boost::json;

namespace {
[[noreturn]] void fail(const json::object& obj, std::string_view key, std::string_view what) {
  throw std::runtime_error("field \"" + std::string(key) + "\" " + std::string(what) + " in " +
                           json::serialize(obj));
}
}  // namespace

const json::value& field(const json::object& obj, std::string_view key) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) fail(obj, key, "is missing");
  return *v;
}

const json::object& obj_field(const json::object& obj, std::string_view key) {
  const auto& v = field(obj, key);
  if (!v.is_object()) fail(obj, key, "is not an object");
  return v.as_object();
}

const json::array& arr_field(const json::object& obj, std::string_view key) {
  const auto& v = field(obj, key);
  if (!v.is_array()) fail(obj, key, "is not an array");
  return v.as_array();
}

std::string str_field(const json::object& obj, std::string_view key) {
  const auto& v = field(obj, key);
  if (!v.is_string()) fail(obj, key, "is not a string");
  return std::string(v.as_string());
}

std::int64_t int_field(const json::object& obj, std::string_view key) {
  const auto& v = field(obj, key);
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64() && v.as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.as_uint64());
  }
  fail(obj, key, "is not an integer");
}

bool bool_field(const json::object& obj, std::string_view key) {
  const auto& v = field(obj, key);
  if (!v.is_bool()) fail(obj, key, "is not a boolean");
  return v.as_bool();
}

bool has_int(const json::object& obj, std::string_view key) {
  const auto* v = obj.if_contains(key);
  return v != nullptr && (v->is_int64() || v->is_uint64());
}

std::string to_string(const json::value& v) { return json::serialize(v); }

}  // namespace parley::test
