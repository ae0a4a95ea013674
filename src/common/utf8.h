#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace parley {

// Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s);
// Decodes the well-formed UTF-8 sequence that starts `s` into `cp` and returns its length
// (1-4), or returns 0 if none does (`cp` is then unspecified).
size_t utf8_decode(std::string_view s, char32_t& cp);
// The length of the well-formed UTF-8 sequence that starts `s` (1-4), or 0 if none does.
size_t utf8_sequence_length(std::string_view s);
// `s` with every byte that is not part of a well-formed sequence replaced by U+FFFD.
std::string utf8_replace_invalid(std::string_view s);

}  // namespace parley
