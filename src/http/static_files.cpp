#include "http/static_files.h"

#include <fmt/format.h>
#include <sodium.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "http/responses.h"

namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;

namespace parley::http {
namespace {

// The policy of every HTML page: scripts, styles and connections only from this origin (the
// client never uses inline script or style), images also from blob: (upload previews).
constexpr const char* kCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

std::string etag_of(const std::string& body) {
  std::array<unsigned char, 16> hash{};
  crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(body.data()),
                     body.size(), nullptr, 0);
  std::string hex(2 * hash.size() + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), hash.data(), hash.size());
  hex.pop_back();
  return "\"" + hex + "\"";
}

bool hidden(const fs::path& relative) {
  for (const auto& part : relative)
    if (!part.empty() && part.native()[0] == '.') return true;
  return false;
}

// True when the If-None-Match list holds `etag` (or is "*").
bool matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    size_t comma = if_none_match.find(',');
    std::string_view item = if_none_match.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string StaticFiles::content_type_of(std::string_view name) {
  static const std::map<std::string, std::string, std::less<>> kTypes{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".ts", "text/plain; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".webmanifest", "application/manifest+json"},
      {".woff2", "font/woff2"},
  };
  size_t dot = name.rfind('.');
  size_t slash = name.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
    return "application/octet-stream";
  std::string ext(name.substr(dot));
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

Result<std::unique_ptr<StaticFiles>> StaticFiles::load(const std::string& root, Limits limits) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    return Error{Errc::bad_request, fmt::format("web root {} is not a directory", root)};
  auto files = std::unique_ptr<StaticFiles>(new StaticFiles());
  uint64_t total = 0;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) return Error{Errc::internal, fmt::format("web root {}: {}", root, ec.message())};
  for (; it != end; it.increment(ec)) {
    if (ec) return Error{Errc::internal, fmt::format("web root {}: {}", root, ec.message())};
    fs::path relative = it->path().lexically_relative(root);
    if (hidden(relative)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    if (files->files_.size() >= limits.max_files)
      return Error{Errc::too_large,
                   fmt::format("web root {} has more than {} files", root, limits.max_files)};
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in && !in.eof())
      return Error{Errc::internal, fmt::format("cannot read {}", it->path().string())};
    File file{body.str(), content_type_of(relative.generic_string()), ""};
    total += file.body.size();
    if (total > limits.max_total_bytes)
      return Error{Errc::too_large, fmt::format("web root {} holds more than {} bytes", root,
                                                limits.max_total_bytes)};
    file.etag = etag_of(file.body);
    std::string path = "/";
    path += relative.generic_string();
    files->files_.emplace(std::move(path), std::move(file));
  }
  return files;
}

std::optional<net::HttpResponse> StaticFiles::serve(const net::HttpRequest& req) const {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  auto it = files_.find(path == "/" ? std::string_view("/index.html") : path);
  if (it == files_.end()) return std::nullopt;
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    auto res = error_response({Errc::method_not_allowed, "use GET"});
    res.set(bhttp::field::allow, "GET, HEAD");
    return res;
  }
  const File& file = it->second;
  const bool not_modified = matches(req[bhttp::field::if_none_match], file.etag);
  net::HttpResponse res{not_modified ? bhttp::status::not_modified : bhttp::status::ok,
                        req.version()};
  res.set(bhttp::field::content_type, file.content_type);
  res.set(bhttp::field::etag, file.etag);
  // File names carry no content hash, so a browser must revalidate every time (a 304 costs
  // one round trip, never a body).
  res.set(bhttp::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  if (file.content_type.starts_with("text/html")) {
    res.set("Content-Security-Policy", kCsp);
    res.set("X-Frame-Options", "DENY");
  }
  if (not_modified) return res;
  if (req.method() == bhttp::verb::head) {
    res.content_length(file.body.size());
    return res;
  }
  res.body() = file.body;
  res.prepare_payload();
  return res;
}

}  // namespace parley::http
