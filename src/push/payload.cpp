#include "push/payload.h"

namespace parley::push {

std::string_view utf8_prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut sequence.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  return s.substr(0, n);
}

std::string count_text(uint32_t count) {
  return count == 1 ? std::string("1 new message") : std::to_string(count) + " new messages";
}

std::optional<std::string> fit_payload(
    const std::function<std::string(std::string_view preview)>& build, std::string_view preview,
    size_t limit, const std::function<size_t(std::string_view preview)>& measure) {
  auto fits = [&](std::string_view p, std::string* out) {
    std::string body = build(p);
    const bool ok = (measure ? measure(p) : body.size()) <= limit;
    if (ok && out) *out = std::move(body);
    return ok;
  };
  std::string body;
  if (fits(preview, &body)) return body;
  if (!fits({}, &body)) return std::nullopt;
  // The size grows with the preview's length: find the longest prefix that fits (escaping
  // makes the serialized size of a prefix unpredictable, so measure rather than compute).
  size_t lo = 0, hi = preview.size();  // prefix(lo) fits, prefix(hi) does not
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    if (fits(utf8_prefix(preview, mid), nullptr)) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  fits(utf8_prefix(preview, lo), &body);
  return body;
}

}  // namespace parley::push
