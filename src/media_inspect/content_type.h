// What an upload really is: its content type detected from the bytes (libmagic), checked
// against an allow-list and against the type the client declared (docs/MEDIA.md,
// "Inspection and thumbnails").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/errc.h"

namespace parley::media_inspect {

// How clients present an attachment.
enum class MediaKind { image, video, audio, file };

// "image", "video", "audio" or "file".
std::string_view media_kind_name(MediaKind kind);

struct DetectedType {
  std::string mime;  // detected from the bytes, canonical (e.g. "image/jpeg"); store this one
  MediaKind kind;
};

// The types accepted when [media] allowed_types is not set: what phones, cameras and office
// software produce (docs/MEDIA.md lists them). Not application/octet-stream.
const std::vector<std::string>& default_allowed_types();

// Lower-cases, drops parameters ("; charset=...") and maps aliases to one canonical name
// ("image/jpg" -> "image/jpeg", "audio/x-m4a" -> "audio/mp4", ...).
std::string canonical_mime(std::string_view mime);

// image/* (except SVG) -> image, video/* -> video, audio/* -> audio, anything else -> file.
MediaKind kind_of(std::string_view mime);

// The canonical MIME type of the first bytes of the file at `path` (libmagic,
// MAGIC_MIME_TYPE): e.g. "image/png", "text/plain", "application/x-empty" for an empty file.
// Errc::not_found when the file cannot be read, Errc::internal when libmagic cannot start.
// Thread-safe; the magic database is loaded once per process.
Result<std::string> detect_mime(const std::string& path);

// detect_mime() on bytes in memory.
Result<std::string> detect_mime_bytes(std::string_view bytes);

// Detects the type of the file at `path` and accepts it when
//  - the detected type is in `allowed` (exact canonical types, or prefixes ending in "*",
//    such as "image/*" or "application/vnd.oasis.opendocument.*"); text
//    whose own type is not allowed (text/x-c, text/csv, text/html, ...) is taken as
//    text/plain when that is, and
//  - `declared_content_type` does not contradict it: it is empty or
//    application/octet-stream (no claim), or names the same canonical type, or the same
//    container (video/mp4 and audio/mp4; ogg; webm; zip and the office formats built on it;
//    HEIC and HEIF: the declared type is then kept if allowed), or both are text.
// Otherwise Errc::bad_request with a message fit for the client.
Result<DetectedType> check_type(const std::string& path, std::string_view declared_content_type,
                                const std::vector<std::string>& allowed = default_allowed_types());

}  // namespace parley::media_inspect
