// Accessors for JSON received from the server. They throw std::runtime_error with the whole
// document in the message when a field is missing or has another type, so a failing test
// says what the server actually sent.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::test {

// obj[key] or throws.
const boost::json::value& field(const boost::json::object& obj, std::string_view key);
const boost::json::object& obj_field(const boost::json::object& obj, std::string_view key);
const boost::json::array& arr_field(const boost::json::object& obj, std::string_view key);
std::string str_field(const boost::json::object& obj, std::string_view key);
// An integer field (int64 or uint64 that fits); throws for doubles and other types.
std::int64_t int_field(const boost::json::object& obj, std::string_view key);
bool bool_field(const boost::json::object& obj, std::string_view key);
// True if obj[key] exists and is an integer.
bool has_int(const boost::json::object& obj, std::string_view key);

std::string to_string(const boost::json::value& v);

}  // namespace parley::test
