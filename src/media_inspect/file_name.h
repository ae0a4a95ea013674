// Client-supplied file names made safe to store, display and send back in a
// Content-Disposition header (RFC 6266, RFC 5987).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace parley::media_inspect {

inline constexpr size_t kMaxFileNameBytes = 255;

// The last path component of `name` (split on '/' and '\'), with invalid UTF-8 replaced by
// U+FFFD, control and bidi-override characters removed, leading dots, trailing dots and
// surrounding spaces trimmed, and cut to kMaxFileNameBytes on a UTF-8 boundary (keeping a short
// extension). Never empty: "file" when nothing is left. Idempotent.
std::string sanitize_file_name(std::string_view name);

// The value of a Content-Disposition header for a download of `name` (sanitized first):
//   attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded UTF-8>
// The fallback has non-ASCII bytes, '"', '\' and '%' replaced by '_'.
std::string content_disposition_attachment(std::string_view name);

}  // namespace parley::media_inspect
