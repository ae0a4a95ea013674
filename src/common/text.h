// Small ASCII text helpers for protocol headers (HTTP field names and values).
#pragma once

#include <string>
#include <string_view>

namespace parley {

// ASCII lower case (header names are case-insensitive).
std::string ascii_lower(std::string_view s);
// Without surrounding spaces, tabs and line ends (a header value as received).
std::string_view trim_header_value(std::string_view s);

}  // namespace parley
