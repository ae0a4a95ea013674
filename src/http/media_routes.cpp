#include "http/media_routes.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/beast/http/field.hpp>
#include <charconv>
#include <vector>

#include "common/clock.h"
#include "http/responses.h"
#include "media_inspect/file_name.h"
#include "net/http_session.h"

namespace bhttp = boost::beast::http;

namespace parley::http {
namespace {

constexpr std::string_view kPrefix = "/v1/media";
constexpr size_t kDownloadChunk = 64 * 1024;
constexpr int64_t kPrivateMaxAge = 31536000;  // a year: the bytes behind an id never change

// Storage trouble is logged in full and answered in general terms: its details (backend,
// object ids, hosts) are the operator's business, not the client's.
net::HttpResponse media_error(const Error& e) {
  if (e.code == Errc::unavailable) {
    spdlog::warn("media: {}", e.message);
    return error_response({e.code, "media storage is unavailable, retry later"});
  }
  if (e.code == Errc::internal) {
    spdlog::error("media: {}", e.message);
    return error_response({e.code, "internal error"});
  }
  return error_response(e);
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// The request body of an upload, fed to the upload job one chunk at a time.
class UploadSink final : public net::BodySink {
 public:
  explicit UploadSink(std::shared_ptr<media_service::UploadJob> job) : job_(std::move(job)) {}
  void write(std::string_view chunk,
             std::function<void(std::optional<net::HttpResponse>)> next) override {
    job_->write(chunk, [next = std::move(next)](Status st) {
      if (st) return next(std::nullopt);
      next(media_error(st.error()));
    });
  }
  void finish(std::function<void(net::HttpResponse)> done) override {
    job_->finish([done = std::move(done)](Result<std::string> r) {
      if (!r) return done(media_error(r.error()));
      done(json_response(bhttp::status::created, std::move(r.value())));
    });
  }
  void abort() override { job_->abort(); }

 private:
  std::shared_ptr<media_service::UploadJob> job_;
};

// A download's body, read from the MediaStore on the media pool through one buffer.
class DownloadSource final : public net::BodySource,
                             public std::enable_shared_from_this<DownloadSource> {
 public:
  DownloadSource(media_service::MediaService& media, std::unique_ptr<media::Reader> reader)
      : media_(media), reader_(std::move(reader)), buffer_(kDownloadChunk) {}
  void read(std::function<void(Result<std::string_view>)> done) override {
    media_.read(*reader_, buffer_.data(), buffer_.size(),
                [self = shared_from_this(), done = std::move(done)](Result<size_t> n) {
                  if (!n) return done(n.error());
                  done(std::string_view(self->buffer_.data(), n.value()));
                });
  }

 private:
  media_service::MediaService& media_;
  std::unique_ptr<media::Reader> reader_;
  std::vector<char> buffer_;
};

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};
enum class RangeKind { whole, partial, unsatisfiable };

uint64_t parse_uint(std::string_view s, bool& ok) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  ok = !s.empty() && ec == std::errc{} && end == s.data() + s.size();
  return v;
}

// One "bytes=a-b" / "bytes=a-" / "bytes=-n" range (RFC 9110 §14.1.2). Anything else
// (several ranges, other units, bad syntax) is ignored: the whole object is sent.
RangeKind parse_range(std::string_view header, uint64_t size, ByteRange& out) {
  out = {0, size};
  if (header.empty()) return RangeKind::whole;
  if (header.substr(0, 6) != "bytes=") return RangeKind::whole;
  std::string_view spec = header.substr(6);
  if (spec.find(',') != std::string_view::npos) return RangeKind::whole;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeKind::whole;
  std::string_view first = spec.substr(0, dash), last = spec.substr(dash + 1);
  bool ok_first = false, ok_last = false;
  if (first.empty()) {  // suffix: the last n bytes
    uint64_t n = parse_uint(last, ok_last);
    if (!ok_last) return RangeKind::whole;
    if (n == 0 || size == 0) return RangeKind::unsatisfiable;
    n = std::min(n, size);
    out = {size - n, n};
    return RangeKind::partial;
  }
  uint64_t a = parse_uint(first, ok_first);
  if (!ok_first) return RangeKind::whole;
  uint64_t b = size ? size - 1 : 0;
  if (!last.empty()) {
    b = parse_uint(last, ok_last);
    if (!ok_last || b < a) return RangeKind::whole;
    b = std::min(b, size ? size - 1 : 0);
  }
  if (a >= size) return RangeKind::unsatisfiable;
  out = {a, b - a + 1};
  return RangeKind::partial;
}

// If-None-Match (RFC 9110 §13.1.2) with our ETag: weak comparison, or "*".
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    auto comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

bool shown_inline(const std::string& kind) {
  return kind == "image" || kind == "video" || kind == "audio";
}

}  // namespace

bool MediaRoutes::owns(std::string_view path) {
  return path == kPrefix || path.substr(0, kPrefix.size() + 1) == "/v1/media/";
}

bool MediaRoutes::streams(const net::HttpRequestHeader& header) {
  return header.method() == bhttp::verb::post && path_of(header.target()) == kPrefix;
}

void MediaRoutes::open_stream(net::HttpRequestHeader header,
                              std::function<void(net::StreamStart)> done) {
  auto refuse = [done](const Error& e) {
    net::StreamStart start;
    start.refusal = media_error(e);
    done(std::move(start));
  };
  std::string token = bearer_token(header);
  if (token.empty()) return refuse({Errc::unauthorized, "missing Authorization: Bearer token"});
  std::string declared(header[bhttp::field::content_type]);
  accounts_.authenticate(std::move(token), [this, declared = std::move(declared), done,
                                            refuse](Result<auth::Identity> who) mutable {
    if (!who) return refuse(who.error());
    auto job = media_.start_upload(who->user, std::move(declared));
    if (!job) return refuse(job.error());
    net::StreamStart start;
    start.sink = std::make_shared<UploadSink>(std::move(job.value()));
    start.max_bytes = media_.config().max_upload_bytes;
    done(std::move(start));
  });
}

void MediaRoutes::handle(net::HttpRequest req, std::function<void(net::HttpReply)> done) {
  std::string_view path = path_of(req.target());
  if (path == kPrefix)  // POST is streamed (open_stream); anything else lands here
    return done(media_error({Errc::method_not_allowed, "use POST to upload"}));
  std::string_view rest = path.substr(kPrefix.size() + 1);
  auto slash = rest.find('/');
  std::string id(rest.substr(0, slash));
  std::string_view sub = slash == std::string_view::npos ? "" : rest.substr(slash);

  if (sub == "/url") {
    if (req.method() != bhttp::verb::post)
      return done(media_error({Errc::method_not_allowed, "use POST"}));
    std::string token = bearer_token(req);
    if (token.empty())
      return done(media_error({Errc::unauthorized, "missing Authorization: Bearer token"}));
    accounts_.authenticate(std::move(token), [this, id, done](Result<auth::Identity> who) {
      if (!who) return done(media_error(who.error()));
      media_.sign(who->user, id, [done](Result<std::string> r) {
        if (!r) return done(media_error(r.error()));
        done(json_response(bhttp::status::ok, std::move(r.value())));
      });
    });
    return;
  }
  if (!sub.empty())
    return done(media_error({Errc::not_found, fmt::format("no route for {}", path)}));
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head)
    return done(media_error({Errc::method_not_allowed, "use GET or HEAD"}));
  download(std::move(req), std::move(id), std::move(done));
}

void MediaRoutes::download(net::HttpRequest req, std::string id,
                           std::function<void(net::HttpReply)> done) {
  auto exp = query_param(req.target(), "exp");
  auto sig = query_param(req.target(), "sig");
  std::string token = bearer_token(req);
  auto respond = [this, req = std::make_shared<net::HttpRequest>(std::move(req)), done](
                     Result<store::MediaRecord> rec, std::string cache_control) {
    if (!rec) return done(media_error(rec.error()));
    const auto& r = rec.value();
    net::HttpResponseHeader h;
    h.version(11);
    const std::string etag = fmt::format("\"{}\"", r.id);
    h.set(bhttp::field::etag, etag);
    h.set(bhttp::field::cache_control, cache_control);
    h.set("X-Content-Type-Options", "nosniff");
    h.set("Content-Security-Policy", "sandbox; default-src 'none'");
    if (etag_matches((*req)[bhttp::field::if_none_match], etag)) {
      h.result(bhttp::status::not_modified);
      return done(net::StreamedResponse{std::move(h), nullptr});
    }
    h.set(bhttp::field::accept_ranges, "bytes");
    h.set(bhttp::field::content_type, r.mime);
    auto name = query_param(req->target(), "name");
    std::string disposition = shown_inline(r.kind) ? "inline" : "attachment";
    if (name && !name->empty()) {
      std::string full = media_inspect::content_disposition_attachment(*name);
      disposition += full.substr(full.find(';'));
    }
    h.set(bhttp::field::content_disposition, disposition);

    ByteRange range;
    switch (parse_range((*req)[bhttp::field::range], r.size, range)) {
      case RangeKind::unsatisfiable: {
        net::HttpResponse res = net::json_error(11, bhttp::status::range_not_satisfiable,
                                                "bad_request", "range not satisfiable");
        res.set(bhttp::field::content_range, fmt::format("bytes */{}", r.size));
        return done(std::move(res));
      }
      case RangeKind::partial:
        h.result(bhttp::status::partial_content);
        h.set(bhttp::field::content_range,
              fmt::format("bytes {}-{}/{}", range.offset, range.offset + range.length - 1, r.size));
        break;
      case RangeKind::whole:
        h.result(bhttp::status::ok);
        break;
    }
    h.set(bhttp::field::content_length, std::to_string(range.length));
    if (req->method() == bhttp::verb::head || range.length == 0)
      return done(net::StreamedResponse{std::move(h), nullptr});
    media_.open(r, range.offset, range.length,
                [this, h = std::move(h), done](Result<media_service::Download> d) mutable {
                  if (!d) return done(media_error(d.error()));
                  auto source = std::make_shared<DownloadSource>(media_, std::move(d->reader));
                  done(net::StreamedResponse{std::move(h), std::move(source)});
                });
  };

  if (exp || sig) {  // a signed URL: no session
    if (auto st = media_.verify_signature(id, exp.value_or(""), sig.value_or("")); !st)
      return done(media_error(st.error()));
    int64_t when = 0;
    std::from_chars(exp->data(), exp->data() + exp->size(), when);
    int64_t max_age = std::max<int64_t>(0, when - now_ms() / 1000);
    std::string cc = fmt::format("public, max-age={}, immutable", max_age);
    return media_.authorize(std::nullopt, id, [respond, cc](Result<store::MediaRecord> rec) {
      respond(std::move(rec), cc);
    });
  }
  if (token.empty())
    return done(
        media_error({Errc::unauthorized, "missing Authorization: Bearer token or a signed URL"}));
  accounts_.authenticate(std::move(token), [this, id, respond](Result<auth::Identity> who) {
    if (!who) return respond(who.error(), "");
    media_.authorize(who->user, id, [respond](Result<store::MediaRecord> rec) {
      respond(std::move(rec), fmt::format("private, max-age={}, immutable", kPrivateMaxAge));
    });
  });
}

}  // namespace parley::http
