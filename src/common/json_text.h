// Wire JSON assembled from parts. Frames on the hot path (proto/frames.cpp) are written as
// text around numbers, literal keys and already serialised JSON; every string that goes
// into such text passes through json_quote, and nothing else inserts text. Everything
// else builds a boost::json value and serialises it.
#pragma once

#include <string>
#include <string_view>

namespace parley {

// `s` as a JSON string literal, quotes included: escaped by Boost.JSON's serializer
// (quote, backslash and every control character, so the result holds no raw newline), with
// bytes that are not well-formed UTF-8 replaced by U+FFFD, so that the result is valid JSON
// for any input.
std::string json_quote(std::string_view s);

}  // namespace parley
