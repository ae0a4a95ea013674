// Payload helpers shared by the providers: the alert text and fitting a preview into a size
// limit without cutting a UTF-8 sequence.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "push/provider.h"

namespace parley::push {

// The longest prefix of `s` of at most `max` bytes that does not end inside a UTF-8
// sequence.
std::string_view utf8_prefix(std::string_view s, size_t max);

// "1 new message" / "N new messages".
std::string count_text(uint32_t count);

// Serializes with build(preview); when the result is over `limit` bytes, cuts the preview
// (on a UTF-8 boundary) until it fits. `measure` gives the size that counts against the
// limit (the whole body by default). nullopt when it does not fit even without a preview.
std::optional<std::string> fit_payload(
    const std::function<std::string(std::string_view preview)>& build, std::string_view preview,
    size_t limit, const std::function<size_t(std::string_view preview)>& measure = nullptr);

}  // namespace parley::push
