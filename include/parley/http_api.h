// Synchronous HTTP calls (PROTOCOL.md §2, docs/MEDIA.md "HTTP API"): register, login, logout,
// health, account deletion, and media upload / download.
// Each call opens one connection, sends one request, and either returns the decoded result or
// throws parley::Error with the server's error code and message (or a client code such as
// "connection_failed", "timeout", "bad_response", "bad_url", "unsupported_scheme", "io_error").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "parley/error.h"
#include "parley/types.h"

namespace parley {

struct HttpOptions {
  // Register, login, logout, health, account deletion, signed URLs: the whole call (resolve,
  // connect, write, read). Media uploads and downloads: each step (connect, and every read or
  // write of the transfer), so a large file may take as long as it needs while bytes move.
  std::chrono::milliseconds timeout{10000};
  std::string user_agent = "libparley/0.1";
  // Media uploads and downloads: called on the calling thread as bytes move, with the bytes
  // of the body sent or received so far and the total (0 when not known yet).
  std::function<void(uint64_t done, uint64_t total)> on_progress;
};

// POST /v1/register; returns the registered user id.
std::string Register(std::string_view server_url, std::string_view username,
                     std::string_view password, const HttpOptions& options = {});

// POST /v1/login; device_name may be empty (the server then picks none).
LoginResult Login(std::string_view server_url, std::string_view username, std::string_view password,
                  std::string_view device_name = {}, const HttpOptions& options = {});

// POST /v1/logout with the token as a Bearer credential; the device is revoked.
void Logout(std::string_view server_url, std::string_view token, const HttpOptions& options = {});

// GET /healthz; true when the server answers 200.
bool Healthy(std::string_view server_url, const HttpOptions& options = {});

// DELETE /v1/account with {"password":...} (omitted when empty: accounts without a password,
// e.g. created by a JWT). Deletes the account: its devices are revoked, it cannot log in again,
// and the media only it referenced is removed. Errors: "unauthorized" (bad token),
// "invalid_credentials" / "forbidden" (wrong password, as the server says).
void DeleteAccount(std::string_view server_url, std::string_view token, std::string_view password,
                   const HttpOptions& options = {});

// ---- Media (docs/MEDIA.md "HTTP API")

// POST /v1/media: streams the file at `path` as the request body (Content-Length from its
// size; never read into memory as a whole) and returns what the server worked out. The request
// carries "Expect: 100-continue", so a refusal that needs no body (a bad token, a declared
// size over the limit) comes before the body is sent. content_type: the declared type,
// checked by the server against the bytes; empty declares none (the server detects it).
// Errors: "io_error" (the file cannot be read), "invalid_argument" (empty file, not a regular
// file), and the server's: "too_large" (413), "unsupported_type" (415: type not allowed, or it
// contradicts content_type), "bad_request" (a corrupt image), "rate_limited" (429),
// "unavailable" (503), "unauthorized" (401).
MediaInfo UploadMedia(std::string_view server_url, std::string_view token, const std::string& path,
                      std::string_view content_type = {}, const HttpOptions& options = {});

struct MediaDownloadOptions {
  // Replace an existing out_path; without, an existing out_path fails with "file_exists"
  // before anything is requested (and the final rename never replaces a file that appeared
  // meanwhile).
  bool overwrite = false;
  // Continue from the bytes of `out_path + ".part"` left by an interrupted download (Range:
  // bytes=N-). Without, a leftover part file is started over. With resume, a failed download
  // keeps its part file for the next attempt; without, it is removed.
  bool resume = false;
  // When the media id is a SHA-256 (64 hex digits), check the bytes against it before the
  // file is renamed into place; a mismatch fails with "bad_response" and removes the part file.
  bool verify = true;
  // Sent as ?name=: the file name the server puts in Content-Disposition. Not a path here.
  std::string name;
};

struct MediaDownload {
  std::string path;          // out_path
  uint64_t size = 0;         // bytes in the file
  uint64_t received = 0;     // bytes received by this call (less than size after a resume)
  std::string content_type;  // the server's Content-Type
  bool resumed = false;      // the server continued from a part file
};

// GET /v1/media/{id} with the token: streams the body to `out_path + ".part"` (mode 0600,
// fsync'd), then renames it to out_path. On failure nothing is at out_path and the part file is
// removed (unless options.resume). Errors: "not_found" (no such object, or one this user may
// not read: the server does not tell them apart), "file_exists", "io_error", "invalid_argument"
// (an id that is not [0-9A-Za-z_-]), "bad_response" (verify failed, a short body).
MediaDownload DownloadMedia(std::string_view server_url, std::string_view token,
                            std::string_view media_id, const std::string& out_path,
                            const MediaDownloadOptions& download = {},
                            const HttpOptions& options = {});

// The same for a signed URL from SignMediaUrl(), without any token: `url` is relative to the
// server ("/v1/media/<id>?exp=...&sig=..."; prefixed with server_url) or absolute
// ("http://cdn.example/v1/media/..."). An expired or tampered signature is "forbidden".
MediaDownload DownloadMediaUrl(std::string_view server_url, std::string_view url,
                               const std::string& out_path,
                               const MediaDownloadOptions& download = {},
                               const HttpOptions& options = {});

// POST /v1/media/{id}/url: a URL that lets anyone download the object until expires_at
// (media.signed_url_ttl_s from now). "not_found" for an object this user may not read.
SignedMediaUrl SignMediaUrl(std::string_view server_url, std::string_view token,
                            std::string_view media_id, const HttpOptions& options = {});

}  // namespace parley
