#include "parley/http_api.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/file.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "parley/error.h"
#include "parley/url.h"
#include "parley/wire.h"

namespace parley {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxResponseBody = 1 << 20;  // JSON answers and error bodies
constexpr size_t kDownloadChunk = 64 * 1024;  // bytes per read of a download body
// How long an upload waits for "100 Continue" before it sends the body anyway (a server or
// proxy that ignores Expect never answers it; RFC 9110 §10.1.1).
constexpr milliseconds kContinueWait{1000};

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string content_range;  // 416 answers: "bytes */SIZE"
};

struct Call {
  Url url;
  http::verb verb = http::verb::get;
  std::string body;    // JSON; empty for none
  std::string bearer;  // token; empty for none
  std::string user_agent;
};

[[noreturn]] void ConnectionFailed(const Url& url, std::string_view step,
                                   const beast::error_code& ec) {
  throw Error(errc::kConnectionFailed,
              std::string(step) + " " + url.HostPort() + ": " + ec.message(), true);
}

[[noreturn]] void IoError(const std::string& what, int err) {
  throw Error(errc::kIo, what + ": " + std::strerror(err));
}

net::awaitable<void> Connect(beast::tcp_stream& stream, const Url& url) {
  auto ex = co_await net::this_coro::executor;
  beast::error_code ec;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                   net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(url, "resolve", ec);
  co_await stream.async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(url, "connect to", ec);
}

template <class Request>
void SetCommonHeaders(Request& req, const Url& url, const std::string& user_agent,
                      const std::string& bearer) {
  req.set(http::field::host, url.HostPort());
  req.set(http::field::user_agent, user_agent);
  if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
  req.keep_alive(false);
}

net::awaitable<Reply> Exchange(Call call) {
  auto ex = co_await net::this_coro::executor;
  beast::error_code ec;
  beast::tcp_stream stream(ex);
  co_await Connect(stream, call.url);

  http::request<http::string_body> req{call.verb, call.url.path, 11};
  SetCommonHeaders(req, call.url, call.user_agent, call.bearer);
  req.set(http::field::accept, "application/json");
  if (!call.body.empty() || call.verb == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(call.body);
  }
  req.prepare_payload();
  co_await http::async_write(stream, req, net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(call.url, "write to", ec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(call.url, "read from", ec);
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  auto res = parser.release();
  co_return Reply{res.result_int(), std::move(res.body()), {}};
}

// Runs one exchange on a private io_context, bounded by options.timeout.
Reply Run(Call call, const HttpOptions& options) {
  net::io_context ioc;
  std::optional<Reply> reply;
  std::exception_ptr error;
  std::string where = call.url.HostPort();
  net::co_spawn(ioc, Exchange(std::move(call)), [&](std::exception_ptr e, Reply r) {
    if (e) {
      error = e;
    } else {
      reply = std::move(r);
    }
  });
  ioc.run_for(options.timeout);
  if (error) std::rethrow_exception(error);
  if (!reply) {
    throw Error(
        errc::kTimeout,
        "no answer from " + where + " within " + std::to_string(options.timeout.count()) + " ms",
        true);
  }
  return std::move(*reply);
}

// The code of an error answer whose body is not the usual JSON (a proxy's page, say).
std::string CodeForStatus(unsigned status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 413:
      return "too_large";
    case 415:
      return "unsupported_type";
    case 416:
      return "range_not_satisfiable";
    case 429:
      return "rate_limited";
    case 503:
      return "unavailable";
    default:
      return "http_" + std::to_string(status);
  }
}

[[noreturn]] void ThrowHttpError(const Reply& reply) {
  bool retryable = reply.status >= 500 || reply.status == 429;
  if (auto e = wire::DecodeHttpError(reply.body)) {
    throw Error(std::move(e->first), std::move(e->second), retryable,
                static_cast<int>(reply.status));
  }
  std::string snippet = reply.body.substr(0, 200);
  throw Error(CodeForStatus(reply.status),
              "HTTP " + std::to_string(reply.status) + (snippet.empty() ? "" : ": " + snippet),
              retryable, static_cast<int>(reply.status));
}

json::value ParseBody(const Reply& reply) {
  json::error_code ec;
  json::value v = json::parse(reply.body, ec);
  if (ec) throw Error(errc::kBadResponse, "response body is not JSON: " + ec.message());
  return v;
}

Reply SendJson(std::string_view server_url, http::verb verb, std::string_view endpoint,
               const json::object& body, std::string_view bearer, const HttpOptions& options) {
  Call call;
  call.url = HttpUrl(ParseUrl(server_url), endpoint);
  call.verb = verb;
  call.body = body.empty() ? std::string() : json::serialize(body);
  call.bearer = std::string(bearer);
  call.user_agent = options.user_agent;
  Reply reply = Run(std::move(call), options);
  if (reply.status < 200 || reply.status > 299) ThrowHttpError(reply);
  return reply;
}

Reply Post(std::string_view server_url, std::string_view endpoint, const json::object& body,
           std::string_view bearer, const HttpOptions& options) {
  return SendJson(server_url, http::verb::post, endpoint, body, bearer, options);
}

// ---------------------------------------------------------------- media transfers

// A transfer runs on its own io_context with an idle watchdog instead of a deadline for the
// whole call: it fails with "timeout" once no step made progress for HttpOptions::timeout.
struct Transfer {
  net::io_context ioc{1};
  Clock::time_point last = Clock::now();
  void Touch() { last = Clock::now(); }
};

net::awaitable<void> Watchdog(Transfer& t, milliseconds idle, bool& timed_out) {
  net::steady_timer timer(co_await net::this_coro::executor);
  for (;;) {
    Clock::time_point due = t.last + idle;
    if (Clock::now() >= due) {
      timed_out = true;
      t.ioc.stop();
      co_return;
    }
    timer.expires_at(due);
    beast::error_code ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
}

template <class T, class Make>
T RunTransfer(Make make, const HttpOptions& options, const std::string& where) {
  Transfer t;
  std::optional<T> result;
  std::exception_ptr error;
  bool timed_out = false;
  net::co_spawn(t.ioc, make(t), [&](std::exception_ptr e, T r) {
    if (e) {
      error = e;
    } else {
      result = std::move(r);
    }
    t.ioc.stop();
  });
  net::co_spawn(t.ioc, Watchdog(t, options.timeout, timed_out), net::detached);
  t.ioc.run();
  if (error) std::rethrow_exception(error);
  if (!result) {
    throw Error(
        errc::kTimeout,
        "no progress with " + where + " for " + std::to_string(options.timeout.count()) + " ms",
        true);
  }
  return std::move(*result);
}

// SHA-256 (OpenSSL EVP) of a download, to check it against its content-addressed id.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_) throw Error("internal", "EVP_MD_CTX_new failed");
    Reset();
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Reset() {
    if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
      throw Error("internal", "SHA-256 init failed");
    }
  }
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string HexDigest() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_, md.data(), &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 0xf];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Media ids go into URL paths: only characters that need no escaping and cannot form "..".
void CheckMediaId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '-';
  });
  if (!ok) {
    throw Error(errc::kInvalidArgument, "bad media id '" + std::string(id.substr(0, 80)) +
                                            "': expected the id of an upload (64 hex digits)");
  }
}

// RFC 3986 percent-encoding of everything but the unreserved characters.
std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

// A header value or request target the caller passed: no control characters.
bool Printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
}

void WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      IoError("cannot write " + path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// ---- upload

// Waits up to `wait` for the header of the server's first answer after the request header:
// true with the header in `parser`, false when the wait ended first (the read is cancelled;
// the stream stays usable).
net::awaitable<bool> ReadHeaderWithin(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                      http::response_parser<http::string_body>& parser,
                                      milliseconds wait, beast::error_code& ec) {
  struct Flags {
    bool done = false;
    bool fired = false;
  };
  auto flags = std::make_shared<Flags>();
  net::steady_timer timer(co_await net::this_coro::executor, wait);
  timer.async_wait([flags, &stream](beast::error_code e) {
    if (e || flags->done) return;
    flags->fired = true;
    beast::error_code ignored;
    stream.socket().cancel(ignored);
  });
  co_await http::async_read_header(stream, buffer, parser,
                                   net::redirect_error(net::use_awaitable, ec));
  flags->done = true;
  timer.cancel();
  if (flags->fired && ec == net::error::operation_aborted) {
    ec = {};
    co_return false;
  }
  co_return !ec;
}

struct UploadCall {
  Url url;
  std::string bearer;
  std::string user_agent;
  std::string content_type;
  std::string path;
  uint64_t size = 0;
  const std::function<void(uint64_t, uint64_t)>* on_progress = nullptr;
};

net::awaitable<Reply> UploadExchange(Transfer& t, UploadCall call) {
  auto ex = co_await net::this_coro::executor;
  beast::error_code ec;
  beast::tcp_stream stream(ex);
  co_await Connect(stream, call.url);
  t.Touch();

  http::request<http::file_body> req{http::verb::post, call.url.path, 11};
  SetCommonHeaders(req, call.url, call.user_agent, call.bearer);
  req.set(http::field::accept, "application/json");
  if (!call.content_type.empty()) req.set(http::field::content_type, call.content_type);
  req.set(http::field::expect, "100-continue");
  req.body().open(call.path.c_str(), beast::file_mode::scan, ec);
  if (ec) throw Error(errc::kIo, "cannot read " + call.path + ": " + ec.message());
  req.prepare_payload();  // Content-Length: the file's size
  uint64_t total = req.body().size();

  http::request_serializer<http::file_body> sr{req};
  co_await http::async_write_header(stream, sr, net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(call.url, "write to", ec);
  t.Touch();

  beast::flat_buffer buffer;
  {
    // "100 Continue", or already the final answer (a bad token, a declared size over the
    // limit): then the body is never sent.
    auto early = std::make_unique<http::response_parser<http::string_body>>();
    early->body_limit(kMaxResponseBody);
    bool got = co_await ReadHeaderWithin(stream, buffer, *early, kContinueWait, ec);
    if (ec) ConnectionFailed(call.url, "read from", ec);
    t.Touch();
    if (got && early->get().result_int() != 100) {
      co_await http::async_read(stream, buffer, *early,
                                net::redirect_error(net::use_awaitable, ec));
      if (ec) ConnectionFailed(call.url, "read from", ec);
      auto res = early->release();
      co_return Reply{res.result_int(), std::move(res.body()), {}};
    }
  }

  uint64_t sent = 0;
  beast::error_code write_ec;
  while (!sr.is_done()) {
    size_t n = co_await http::async_write_some(stream, sr,
                                               net::redirect_error(net::use_awaitable, write_ec));
    if (write_ec) break;  // the server may have answered and closed: read that answer below
    sent = std::min<uint64_t>(sent + n, total);
    t.Touch();
    if (call.on_progress && *call.on_progress) (*call.on_progress)(sent, total);
  }

  for (;;) {  // the final answer; a late "100 Continue" comes first
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
    if (ec)
      ConnectionFailed(call.url, write_ec ? "write to" : "read from", write_ec ? write_ec : ec);
    t.Touch();
    if (parser.get().result_int() / 100 == 1) continue;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    auto res = parser.release();
    co_return Reply{res.result_int(), std::move(res.body()), {}};
  }
}

// ---- download

struct DownloadCall {
  Url url;  // path with the query
  std::string bearer;
  std::string user_agent;
  uint64_t offset = 0;  // bytes already in the part file: ask for the rest
  int fd = -1;          // the part file, positioned at offset
  std::string part_path;
  Sha256* hash = nullptr;  // fed with every byte of the file (reset when starting over)
  const std::function<void(uint64_t, uint64_t)>* on_progress = nullptr;
};

struct DownloadReply {
  uint64_t received = 0;
  uint64_t size = 0;  // bytes in the file
  std::string content_type;
  bool resumed = false;
};

// "bytes A-B/SIZE" or "bytes */SIZE": A (nullopt for "*") and SIZE (nullopt for "*").
bool ParseContentRange(std::string_view v, std::optional<uint64_t>& first,
                       std::optional<uint64_t>& size) {
  auto number = [](std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    out = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
  };
  if (v.substr(0, 6) != "bytes ") return false;
  v.remove_prefix(6);
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view range = v.substr(0, slash);
  std::string_view total = v.substr(slash + 1);
  uint64_t n = 0;
  if (total == "*") {
    size.reset();
  } else if (number(total, n)) {
    size = n;
  } else {
    return false;
  }
  if (range == "*") {
    first.reset();
    return true;
  }
  size_t dash = range.find('-');
  if (dash == std::string_view::npos || !number(range.substr(0, dash), n)) return false;
  first = n;
  return true;
}

// Reads the rest of a response body through a fixed buffer, handing each piece to a sink.
struct BodyReader {
  Transfer& t;
  beast::tcp_stream& stream;
  beast::flat_buffer& buffer;
  http::response_parser<http::buffer_body>& parser;
  std::vector<char>& chunk;
  const Url& url;

  net::awaitable<void> Read(std::function<void(const char*, size_t)> sink) {
    beast::error_code ec;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      co_await http::async_read(stream, buffer, parser,
                                net::redirect_error(net::use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      size_t n = chunk.size() - parser.get().body().size;
      if (n > 0) sink(chunk.data(), n);  // also what came before an error: a resume keeps it
      if (ec) ConnectionFailed(url, "read from", ec);
      t.Touch();
    }
  }
};

net::awaitable<DownloadReply> DownloadExchange(Transfer& t, DownloadCall call) {
  auto ex = co_await net::this_coro::executor;
  beast::error_code ec;
  beast::tcp_stream stream(ex);
  co_await Connect(stream, call.url);
  t.Touch();

  http::request<http::empty_body> req{http::verb::get, call.url.path, 11};
  SetCommonHeaders(req, call.url, call.user_agent, call.bearer);
  req.set(http::field::accept, "*/*");
  if (call.offset > 0) req.set(http::field::range, "bytes=" + std::to_string(call.offset) + "-");
  co_await http::async_write(stream, req, net::redirect_error(net::use_awaitable, ec));
  if (ec) ConnectionFailed(call.url, "write to", ec);
  t.Touch();

  beast::flat_buffer buffer;
  auto parser_ptr = std::make_unique<http::response_parser<http::buffer_body>>();
  for (;;) {
    co_await http::async_read_header(stream, buffer, *parser_ptr,
                                     net::redirect_error(net::use_awaitable, ec));
    if (ec) ConnectionFailed(call.url, "read from", ec);
    t.Touch();
    if (parser_ptr->get().result_int() / 100 != 1) break;
    // An interim answer: parse the next one afresh.
    parser_ptr = std::make_unique<http::response_parser<http::buffer_body>>();
  }
  http::response_parser<http::buffer_body>& parser = *parser_ptr;
  parser.body_limit(boost::none);
  unsigned status = parser.get().result_int();
  DownloadReply out;
  out.content_type = std::string(parser.get()[http::field::content_type]);
  std::optional<uint64_t> range_first;
  std::optional<uint64_t> range_size;
  bool has_range =
      ParseContentRange(parser.get()[http::field::content_range], range_first, range_size);
  std::vector<char> chunk(kDownloadChunk);
  BodyReader body{t, stream, buffer, parser, chunk, call.url};

  if (status != 200 && status != 206) {
    Reply error{status, {}, std::string(parser.get()[http::field::content_range])};
    if (status == 416 && call.offset > 0 && has_range && !range_first && range_size &&
        *range_size == call.offset) {
      out.size = call.offset;  // the part file holds the whole object already
      out.resumed = true;
      co_return out;
    }
    co_await body.Read([&](const char* data, size_t n) {
      size_t room = kMaxResponseBody - std::min(kMaxResponseBody, error.body.size());
      error.body.append(data, std::min(n, room));
    });
    ThrowHttpError(error);
  }

  uint64_t offset = call.offset;
  if (status == 206) {
    if (!has_range || !range_first || *range_first != offset) {
      throw Error(errc::kBadResponse, "download from " + call.url.HostPort() +
                                          ": 206 with an unexpected Content-Range '" +
                                          std::string(parser.get()[http::field::content_range]) +
                                          "' (asked for bytes " + std::to_string(offset) + "-)");
    }
    out.resumed = offset > 0;
  } else if (offset > 0) {  // 200: the whole object after all; start the file over
    if (::ftruncate(call.fd, 0) != 0 || ::lseek(call.fd, 0, SEEK_SET) != 0) {
      IoError("cannot truncate " + call.part_path, errno);
    }
    if (call.hash) call.hash->Reset();
    offset = 0;
  }
  uint64_t total = 0;
  if (range_size) {
    total = *range_size;
  } else if (auto len = parser.content_length()) {
    total = offset + *len;
  }
  const auto* progress = call.on_progress && *call.on_progress ? call.on_progress : nullptr;
  if (progress) (*progress)(offset, total);
  co_await body.Read([&](const char* data, size_t n) {
    WriteAll(call.fd, data, n, call.part_path);
    if (call.hash) call.hash->Update(data, n);
    out.received += n;
    if (progress) (*progress)(offset + out.received, total);
  });
  out.size = offset + out.received;
  if (total > 0 && out.size != total) {
    throw Error(errc::kBadResponse, "download from " + call.url.HostPort() + " ended after " +
                                        std::to_string(out.size) + " of " + std::to_string(total) +
                                        " bytes");
  }
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  co_return out;
}

// Moves the finished part file to its name: never over an existing file unless `overwrite`.
void PlaceFile(const std::string& part, const std::string& out_path, bool overwrite) {
  if (overwrite) {
    if (::rename(part.c_str(), out_path.c_str()) != 0) {
      IoError("cannot rename " + part + " to " + out_path, errno);
    }
    return;
  }
  if (::link(part.c_str(), out_path.c_str()) == 0) {
    ::unlink(part.c_str());
    return;
  }
  int err = errno;
  if (err == EEXIST) {
    throw Error(errc::kFileExists, out_path + " exists (it appeared during the download)");
  }
  // A file system without hard links: check, then rename (a small race).
  struct stat st {};
  if (::lstat(out_path.c_str(), &st) == 0) {
    throw Error(errc::kFileExists, out_path + " exists (it appeared during the download)");
  }
  if (::rename(part.c_str(), out_path.c_str()) != 0) {
    IoError("cannot rename " + part + " to " + out_path, errno);
  }
}

MediaDownload DownloadTo(const Url& url, std::string_view bearer, std::string_view expect_id,
                         const std::string& out_path, const MediaDownloadOptions& download,
                         const HttpOptions& options) {
  if (out_path.empty()) throw Error(errc::kInvalidArgument, "download: no output path");
  struct stat st {};
  if (!download.overwrite && ::lstat(out_path.c_str(), &st) == 0) {
    throw Error(errc::kFileExists, out_path + " exists (choose another path, or overwrite it)");
  }
  if (download.overwrite && ::stat(out_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw Error(errc::kInvalidArgument, out_path + " is a directory");
  }
  std::string part = out_path + ".part";
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (download.resume ? 0 : O_TRUNC);
  Fd fd(::open(part.c_str(), flags, 0600));
  if (fd.get() < 0) IoError("cannot create " + part, errno);

  bool verify = download.verify && IsSha256Hex(expect_id);
  Sha256 hash;
  uint64_t offset = 0;
  bool keep_part = false;
  try {
    if (download.resume) {
      off_t end = ::lseek(fd.get(), 0, SEEK_END);
      if (end < 0) IoError("cannot seek in " + part, errno);
      offset = static_cast<uint64_t>(end);
      if (verify && offset > 0) {  // the bytes from before count toward the hash
        Fd in(::open(part.c_str(), O_RDONLY | O_CLOEXEC));
        if (in.get() < 0) IoError("cannot read " + part, errno);
        std::vector<char> buf(kDownloadChunk);
        for (;;) {
          ssize_t n = ::read(in.get(), buf.data(), buf.size());
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) IoError("cannot read " + part, errno);
          if (n == 0) break;
          hash.Update(buf.data(), static_cast<size_t>(n));
        }
      }
    }
    DownloadCall call;
    call.url = url;
    call.bearer = std::string(bearer);
    call.user_agent = options.user_agent;
    call.offset = offset;
    call.fd = fd.get();
    call.part_path = part;
    call.hash = verify ? &hash : nullptr;
    call.on_progress = &options.on_progress;
    DownloadReply reply = RunTransfer<DownloadReply>(
        [&](Transfer& t) { return DownloadExchange(t, call); }, options, url.HostPort());
    if (verify) {
      std::string got = hash.HexDigest();
      if (got != expect_id) {
        throw Error(errc::kBadResponse, "the downloaded bytes do not match media id " +
                                            std::string(expect_id) + " (their SHA-256 is " + got +
                                            ")");
      }
    }
    if (::fsync(fd.get()) != 0) IoError("cannot write " + part, errno);
    fd.Close();
    PlaceFile(part, out_path, download.overwrite);
    MediaDownload result;
    result.path = out_path;
    result.size = reply.size;
    result.received = reply.received;
    result.content_type = std::move(reply.content_type);
    result.resumed = reply.resumed;
    return result;
  } catch (const Error& e) {
    // Worth keeping for a resumed attempt: a transfer cut short, not a refusal or bad bytes.
    bool transient = e.code() == errc::kConnectionFailed || e.code() == errc::kTimeout ||
                     (e.retryable() && e.http_status() >= 500);
    keep_part = download.resume && transient;
    fd.Close();
    if (!keep_part) ::unlink(part.c_str());
    throw;
  } catch (...) {
    fd.Close();
    if (!download.resume) ::unlink(part.c_str());
    throw;
  }
}

}  // namespace

std::string Register(std::string_view server_url, std::string_view username,
                     std::string_view password, const HttpOptions& options) {
  json::object body;
  body["username"] = username;
  body["password"] = password;
  return wire::DecodeRegisterResult(ParseBody(Post(server_url, "/v1/register", body, {}, options)));
}

LoginResult Login(std::string_view server_url, std::string_view username, std::string_view password,
                  std::string_view device_name, const HttpOptions& options) {
  json::object body;
  body["username"] = username;
  body["password"] = password;
  if (!device_name.empty()) body["device_name"] = device_name;
  return wire::DecodeLoginResult(ParseBody(Post(server_url, "/v1/login", body, {}, options)));
}

void Logout(std::string_view server_url, std::string_view token, const HttpOptions& options) {
  if (token.empty()) throw Error(errc::kInvalidArgument, "logout needs a token");
  Post(server_url, "/v1/logout", json::object(), token, options);
}

bool Healthy(std::string_view server_url, const HttpOptions& options) {
  Call call;
  call.url = HttpUrl(ParseUrl(server_url), "/healthz");  // a bad URL throws
  call.user_agent = options.user_agent;
  try {
    return Run(std::move(call), options).status == 200;
  } catch (const Error&) {
    return false;
  }
}

void DeleteAccount(std::string_view server_url, std::string_view token, std::string_view password,
                   const HttpOptions& options) {
  if (token.empty()) throw Error(errc::kInvalidArgument, "account deletion needs a token");
  json::object body;
  if (!password.empty()) body["password"] = password;
  SendJson(server_url, http::verb::delete_, "/v1/account", body, token, options);
}

MediaInfo UploadMedia(std::string_view server_url, std::string_view token, const std::string& path,
                      std::string_view content_type, const HttpOptions& options) {
  if (token.empty()) throw Error(errc::kInvalidArgument, "upload needs a token");
  if (!Printable(content_type)) {
    throw Error(errc::kInvalidArgument, "content type has control characters");
  }
  UploadCall call;
  call.url = HttpUrl(ParseUrl(server_url), "/v1/media");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) IoError("cannot read " + path, errno);
  if (S_ISDIR(st.st_mode)) throw Error(errc::kInvalidArgument, path + " is a directory");
  if (!S_ISREG(st.st_mode)) throw Error(errc::kInvalidArgument, path + " is not a regular file");
  if (st.st_size == 0) throw Error(errc::kInvalidArgument, path + " is empty: nothing to upload");
  if (::access(path.c_str(), R_OK) != 0) IoError("cannot read " + path, errno);
  call.bearer = std::string(token);
  call.user_agent = options.user_agent;
  call.content_type = std::string(content_type);
  call.path = path;
  call.size = static_cast<uint64_t>(st.st_size);
  call.on_progress = &options.on_progress;
  std::string where = call.url.HostPort();
  Reply reply =
      RunTransfer<Reply>([&](Transfer& t) { return UploadExchange(t, call); }, options, where);
  if (reply.status < 200 || reply.status > 299) ThrowHttpError(reply);
  return wire::DecodeMediaInfo(ParseBody(reply));
}

MediaDownload DownloadMedia(std::string_view server_url, std::string_view token,
                            std::string_view media_id, const std::string& out_path,
                            const MediaDownloadOptions& download, const HttpOptions& options) {
  if (token.empty()) throw Error(errc::kInvalidArgument, "download needs a token");
  CheckMediaId(media_id);
  std::string endpoint = "/v1/media/" + std::string(media_id);
  if (!download.name.empty()) endpoint += "?name=" + PercentEncode(download.name);
  Url url = HttpUrl(ParseUrl(server_url), endpoint);
  return DownloadTo(url, token, media_id, out_path, download, options);
}

MediaDownload DownloadMediaUrl(std::string_view server_url, std::string_view url,
                               const std::string& out_path, const MediaDownloadOptions& download,
                               const HttpOptions& options) {
  if (url.empty() || !Printable(url) || url.find(' ') != std::string_view::npos) {
    throw Error(errc::kBadUrl, "bad media URL '" + std::string(url.substr(0, 200)) + "'");
  }
  size_t q = url.find('?');
  std::string_view base = url.substr(0, q);
  std::string query = q == std::string_view::npos ? "" : std::string(url.substr(q));
  if (!download.name.empty()) {
    query += (query.empty() ? "?name=" : "&name=") + PercentEncode(download.name);
  }
  Url target;
  if (!base.empty() && base.front() == '/') {
    target = HttpUrl(ParseUrl(server_url), base);
  } else {
    target = HttpUrl(ParseUrl(base), "");
  }
  std::string path = target.path;
  target.path += query;
  // The id is the last path segment: checked against the bytes like DownloadMedia does.
  std::string id = path.substr(path.find_last_of('/') + 1);
  return DownloadTo(target, {}, id, out_path, download, options);
}

SignedMediaUrl SignMediaUrl(std::string_view server_url, std::string_view token,
                            std::string_view media_id, const HttpOptions& options) {
  if (token.empty()) throw Error(errc::kInvalidArgument, "signing a media URL needs a token");
  CheckMediaId(media_id);
  std::string endpoint = "/v1/media/" + std::string(media_id) + "/url";
  return wire::DecodeSignedMediaUrl(
      ParseBody(Post(server_url, endpoint, json::object(), token, options)));
}

}  // namespace parley
