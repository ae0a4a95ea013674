#include "media_inspect/content_type.h"

#include <fcntl.h>
#include <magic.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include <fmt/format.h>

namespace parley::media_inspect {
namespace {

// libmagic never needs more than the head of a file for the types we care about; reading it
// ourselves keeps file I/O outside the lock below.
constexpr size_t kHeadBytes = 1 << 20;

// One magic_t for the process, loaded on first use. libmagic handles are not safe to share
// between threads, so every call takes the mutex; a detection on a 1 MiB head takes well under
// a millisecond.
class Magic {
 public:
  static Magic& instance() {
    static Magic magic;
    return magic;
  }

  Result<std::string> detect(std::string_view bytes) {
    std::lock_guard lock(mu_);
    if (cookie_ == nullptr) return Error{Errc::internal, "content type detection unavailable"};
    const char* type = magic_buffer(cookie_, bytes.data(), bytes.size());
    if (type == nullptr) {
      const char* why = magic_error(cookie_);
      return Error{Errc::internal,
                   fmt::format("content type detection failed: {}", why ? why : "unknown")};
    }
    return std::string(type);
  }

  Magic(const Magic&) = delete;
  Magic& operator=(const Magic&) = delete;

 private:
  Magic() {
    // MAGIC_MIME_TYPE: "type/subtype" only. No MAGIC_COMPRESS: never look inside compressed
    // data. MAGIC_ERROR: report errors instead of printing them as the type.
    cookie_ = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
    if (cookie_ != nullptr && magic_load(cookie_, nullptr) != 0) {
      magic_close(cookie_);
      cookie_ = nullptr;
    }
  }
  ~Magic() {
    if (cookie_ != nullptr) magic_close(cookie_);
  }

  std::mutex mu_;
  magic_t cookie_ = nullptr;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Other names for the same type, as sent by browsers and operating systems or as reported by
// libmagic.
constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kAliases{{
    {"image/jpg", "image/jpeg"},
    {"image/pjpeg", "image/jpeg"},
    {"image/x-png", "image/png"},
    {"audio/mp3", "audio/mpeg"},
    {"audio/x-mp3", "audio/mpeg"},
    {"audio/x-mpeg", "audio/mpeg"},
    {"audio/x-m4a", "audio/mp4"},
    {"audio/m4a", "audio/mp4"},
    {"audio/x-wav", "audio/wav"},
    {"audio/wave", "audio/wav"},
    {"audio/vnd.wave", "audio/wav"},
    {"application/x-pdf", "application/pdf"},
    {"application/x-zip-compressed", "application/zip"},
    {"application/x-zip", "application/zip"},
    {"binary/octet-stream", "application/octet-stream"},
    {"application/x-ogg", "application/ogg"},
    {"video/x-m4v", "video/mp4"},
    {"audio/x-hx-aac-adts", "audio/aac"},
    {"audio/x-aac", "audio/aac"},
    {"audio/x-flac", "audio/flac"},
    {"image/heic-sequence", "image/heic"},
    {"image/heif-sequence", "image/heif"},
}};

bool is_zip_document(std::string_view mime) {
  return mime == "application/zip" ||
         mime.starts_with("application/vnd.openxmlformats-officedocument.") ||
         mime.starts_with("application/vnd.oasis.opendocument.");
}

// Types that share a container and so cannot be told apart reliably from the bytes: an mp4 with
// only an audio track may be reported as video/mp4, an audio-only webm as video/webm.
int container_group(std::string_view mime) {
  if (mime == "video/mp4" || mime == "audio/mp4") return 1;
  if (mime == "audio/ogg" || mime == "video/ogg" || mime == "application/ogg") return 2;
  if (mime == "video/webm" || mime == "audio/webm") return 3;
  // Office documents are zip files; libmagic names them only when their first entries say so.
  if (is_zip_document(mime)) return 4;
  if (mime == "image/heic" || mime == "image/heif") return 5;  // HEIF brands
  return 0;
}

// The declared type as it may appear in a message to the client.
std::string_view printable(std::string_view declared) {
  bool ok = declared.size() <= 100 && std::all_of(declared.begin(), declared.end(),
                                                  [](char c) { return c > ' ' && c < 0x7f; });
  return ok ? declared : std::string_view("(unprintable)");
}

bool is_text(std::string_view mime) { return mime.starts_with("text/"); }

bool no_claim(std::string_view declared) {
  return declared.empty() || declared == "application/octet-stream";
}

bool allowed_by(std::string_view mime, const std::vector<std::string>& allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& entry) {
    std::string want = canonical_mime(entry);
    // "image/*", "application/vnd.oasis.opendocument.*": a prefix.
    if (want.size() >= 2 && want.ends_with("*"))
      return mime.starts_with(std::string_view(want).substr(0, want.size() - 1));
    return want == mime;
  });
}

// Reads at most kHeadBytes from the start of the file.
Result<std::string> read_head(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error{Errc::not_found, fmt::format("cannot open upload: {}", std::strerror(errno))};
  }
  std::string head(kHeadBytes, '\0');
  size_t got = 0;
  while (got < head.size()) {
    ssize_t n = ::read(fd, head.data() + got, head.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Error{Errc::internal, fmt::format("cannot read upload: {}", std::strerror(err))};
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  head.resize(got);
  return head;
}

}  // namespace

std::string_view media_kind_name(MediaKind kind) {
  switch (kind) {
    case MediaKind::image:
      return "image";
    case MediaKind::video:
      return "video";
    case MediaKind::audio:
      return "audio";
    case MediaKind::file:
      return "file";
  }
  return "file";
}

const std::vector<std::string>& default_allowed_types() {
  // What phones, cameras and office software produce. Not application/octet-stream (anything
  // unrecognised), nor executables, nor SVG/HTML (documents that can carry scripts: HTML and
  // other text is kept as text/plain).
  static const std::vector<std::string> types{
      // Pictures: iPhones take HEIC/HEIF (stored without a thumbnail: see docs/MEDIA.md).
      "image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif",
      "image/avif",
      // Video: iPhones record QuickTime, older Android phones 3GPP.
      "video/mp4", "video/webm", "video/quicktime", "video/3gpp", "video/3gpp2",
      // Audio and voice notes.
      "audio/mpeg", "audio/ogg", "audio/mp4", "audio/webm", "audio/wav", "audio/aac", "audio/flac",
      "audio/amr", "audio/3gpp",
      // Documents.
      "application/pdf", "text/plain", "application/json", "application/rtf", "application/zip",
      "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
      "application/vnd.ms-office", "application/vnd.openxmlformats-officedocument.*",
      "application/vnd.oasis.opendocument.*"};
  return types;
}

std::string canonical_mime(std::string_view mime) {
  mime = trim(mime.substr(0, mime.find(';')));
  std::string out(mime);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  for (const auto& [alias, canonical] : kAliases) {
    if (out == alias) return std::string(canonical);
  }
  return out;
}

MediaKind kind_of(std::string_view mime) {
  std::string m = canonical_mime(mime);
  // SVG is a document that can carry scripts: never shown inline as a picture.
  if (m.starts_with("image/") && m != "image/svg+xml") return MediaKind::image;
  if (m.starts_with("video/")) return MediaKind::video;
  if (m.starts_with("audio/")) return MediaKind::audio;
  return MediaKind::file;
}

Result<std::string> detect_mime_bytes(std::string_view bytes) {
  auto type = Magic::instance().detect(bytes.substr(0, kHeadBytes));
  if (!type) return type;
  return canonical_mime(type.value());
}

Result<std::string> detect_mime(const std::string& path) {
  auto head = read_head(path);
  if (!head) return head.error();
  return detect_mime_bytes(head.value());
}

Result<DetectedType> check_type(const std::string& path, std::string_view declared_content_type,
                                const std::vector<std::string>& allowed) {
  auto detected = detect_mime(path);
  if (!detected) return detected.error();
  std::string mime = std::move(detected.value());
  std::string declared = canonical_mime(declared_content_type);

  if (mime == "application/x-empty") return Error{Errc::bad_request, "the file is empty"};
  // Text of any kind (source code, CSV, HTML, ...) is kept as text/plain, which is harmless to
  // serve, unless its own type is allowed.
  if (is_text(mime) && !allowed_by(mime, allowed) && allowed_by("text/plain", allowed)) {
    mime = "text/plain";
  }
  if (!allowed_by(mime, allowed)) {
    return Error{Errc::bad_request, fmt::format("files of type {} are not accepted", mime)};
  }
  if (!no_claim(declared) && declared != mime) {
    int group = container_group(mime);
    if (group != 0 && group == container_group(declared)) {
      // Same container: the declared type is the more precise one (audio/mp4 for an m4a, a
      // .docx that libmagic sees only as a zip), unless it is the bare container itself.
      if (allowed_by(declared, allowed) && declared != "application/zip") mime = declared;
    } else if (!(is_text(mime) && is_text(declared))) {
      return Error{Errc::bad_request,
                   fmt::format("declared content type {} does not match the file's content ({})",
                               printable(declared), mime)};
    }
  }
  MediaKind kind = kind_of(mime);
  return DetectedType{std::move(mime), kind};
}

}  // namespace parley::media_inspect
