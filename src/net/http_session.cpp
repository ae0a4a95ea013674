#include "net/http_session.h"

#include <fmt/format.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <charconv>

#include "net/connection_tracker.h"
#include "net/ws_handshake.h"

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

namespace parley::net {
namespace {

// True if the comma-separated Sec-WebSocket-Protocol offer contains `want`.
bool offers_subprotocol(std::string_view header, std::string_view want) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto token = header.substr(0, comma);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (token == want) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<uint64_t> parse_length(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// A sink on its way from open_stream()'s `done` to the session: aborted if the posted call
// is dropped without running (the I/O threads stopped), so the sink always learns.
struct PendingSink {
  explicit PendingSink(std::shared_ptr<BodySink> s) : sink(std::move(s)) {}
  PendingSink(PendingSink&& other) noexcept : sink(std::move(other.sink)) {}
  PendingSink& operator=(PendingSink&&) = delete;
  ~PendingSink() {
    if (sink) sink->abort();
  }
  std::shared_ptr<BodySink> sink;
};

}  // namespace

// The message and serializer of a StreamedResponse (the serializer refers to the message:
// neither moves once built).
struct HttpSession::Outgoing {
  explicit Outgoing(HttpResponseHeader header) : res(std::move(header)), sr(res) {}
  http::response<http::buffer_body> res;
  http::response_serializer<http::buffer_body> sr;
  std::shared_ptr<BodySource> source;
  std::optional<uint64_t> remaining;  // bytes still due under Content-Length
  bool keep_alive = false;
};

HttpResponse json_error(unsigned version, http::status status, std::string_view code,
                        std::string_view message) {
  HttpResponse res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = boost::json::serialize(
      boost::json::object{{"error", boost::json::object{{"code", code}, {"message", message}}}});
  res.prepare_payload();
  return res;
}

HttpSession::HttpSession(asio::ip::tcp::socket&& socket, const HttpOptions& http,
                         const WsOptions& ws, HttpHandler& handler, WsService& ws_service,
                         ConnectionTracker& tracker)
    : stream_(std::move(socket)),
      http_(http),
      ws_(ws),
      handler_(handler),
      ws_service_(ws_service),
      tracker_(tracker) {}

HttpSession::~HttpSession() {
  // Only when the I/O threads stopped while a body was streaming in (otherwise the sink is
  // released, or a pending callback keeps the session alive).
  if (sink_ && !sink_stopped_) sink_->abort();
  if (!handed_over_) tracker_.closed();
}

void HttpSession::run() {
  asio::dispatch(stream_.get_executor(),
                 beast::bind_front_handler(&HttpSession::read_next, shared_from_this()));
}

char* HttpSession::chunk_buffer() {
  if (!chunk_) chunk_ = std::make_unique<char[]>(kChunkBytes);
  return chunk_.get();
}

// ---- Requests ----

void HttpSession::read_next() {
  request_done_ = false;
  parser_.reset();
  body_parser_.reset();
  header_parser_.emplace();
  header_parser_->header_limit(http_.header_limit);
  // A Content-Length is checked against the limit of the body's path once that is known.
  header_parser_->body_limit(boost::none);
  stream_.expires_after(std::chrono::seconds(http_.timeout_s));
  http::async_read_header(stream_, buffer_, *header_parser_,
                          beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
}

void HttpSession::on_header(beast::error_code ec, size_t) {
  if (ec) return on_read_error(ec);
  const auto& header = header_parser_->get();
  version_ = header.version();
  keep_alive_ = header.keep_alive();
  head_ = header.method() == http::verb::head;
  if (!beast::websocket::is_upgrade(header) && handler_.streams(header)) return open_stream();
  read_whole();
}

void HttpSession::on_read_error(beast::error_code ec) {
  if (ec == http::error::body_limit)
    return respond(json_error(11, http::status::payload_too_large, "too_large",
                              fmt::format("request body over {} bytes", http_.body_limit)));
  if (ec == http::error::header_limit)
    return respond(json_error(11, http::status::request_header_fields_too_large, "too_large",
                              "headers too large"));
  if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
      ec != asio::error::operation_aborted && ec != asio::error::connection_reset &&
      ec != asio::error::eof)
    return respond(
        json_error(11, http::status::bad_request, "bad_request", "malformed HTTP request"));
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

void HttpSession::read_whole() {
  // Beast lets a parser that has read only the header continue with another body type.
  parser_.emplace(std::move(*header_parser_));
  header_parser_.reset();
  parser_->body_limit(http_.body_limit);
  if (auto length = parser_->content_length(); length && *length > http_.body_limit)
    return on_read_error(http::error::body_limit);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, size_t) {
  if (ec) return on_read_error(ec);
  request_done_ = true;
  HttpRequest req = parser_->release();
  parser_.reset();
  if (beast::websocket::is_upgrade(req)) return upgrade(std::move(req));
  auto self = shared_from_this();
  handler_.handle(std::move(req), [self](HttpReply reply) {
    asio::post(self->stream_.get_executor(),
               [self, reply = std::move(reply)]() mutable { self->reply(std::move(reply)); });
  });
}

void HttpSession::upgrade(HttpRequest req) {
  auto path = std::string_view(req.target()).substr(0, std::string_view(req.target()).find('?'));
  if (path != http_.ws_path)
    return respond(json_error(req.version(), http::status::not_found, "not_found",
                              "no WebSocket endpoint here"));
  if (!offers_subprotocol(req[http::field::sec_websocket_protocol], http_.ws_subprotocol))
    return respond(
        json_error(req.version(), http::status::bad_request, "subprotocol_required",
                   fmt::format("offer the WebSocket subprotocol {}", http_.ws_subprotocol)));
  if (auto refusal = ws::check_upgrade(req)) {
    auto res = json_error(req.version(), refusal->status, refusal->code, refusal->message);
    if (refusal->status == http::status::upgrade_required)
      res.set(http::field::sec_websocket_version, "13");
    return respond(std::move(res));
  }
  handed_over_ = true;
  stream_.expires_never();
  // Bytes the client sent after its request (it should wait for the answer, but may not).
  std::string early = beast::buffers_to_string(buffer_.data());
  auto ws = std::make_shared<WsConnection>(stream_.release_socket(), ws_, ws_service_, tracker_);
  ws->start(ws::switching_protocols(req[http::field::sec_websocket_key], http_.ws_subprotocol),
            std::move(early));
}

// ---- Streamed request bodies ----

void HttpSession::open_stream() {
  // The handler may take its time (an authorization check): no timer meanwhile.
  stream_.expires_never();
  auto self = shared_from_this();
  HttpRequestHeader header = static_cast<const HttpRequestHeader&>(header_parser_->get());
  handler_.open_stream(std::move(header), [self](StreamStart start) {
    asio::post(self->stream_.get_executor(),
               [self, pending = PendingSink(std::move(start.sink)),
                refusal = std::move(start.refusal), max_bytes = start.max_bytes]() mutable {
                 self->on_stream_start(std::move(pending.sink), std::move(refusal), max_bytes);
               });
  });
}

void HttpSession::on_stream_start(std::shared_ptr<BodySink> sink,
                                  std::optional<HttpResponse> refusal, uint64_t max_bytes) {
  if (!sink) {
    HttpResponse res = refusal ? std::move(*refusal)
                               : json_error(version_, http::status::internal_server_error,
                                            "internal", "the upload was neither taken nor refused");
    res.version(version_);
    res.keep_alive(false);
    return respond(std::move(res));  // the body is not read: the connection closes after
  }
  sink_ = std::move(sink);
  sink_stopped_ = false;
  max_bytes_ = max_bytes;
  body_parser_.emplace(std::move(*header_parser_));
  header_parser_.reset();
  body_parser_->body_limit(max_bytes);
  if (auto length = body_parser_->content_length(); length && *length > max_bytes)
    return stream_too_large();
  if (version_ >= 11 && !body_parser_->is_done() &&
      beast::iequals(body_parser_->get()[http::field::expect], "100-continue")) {
    auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
    stream_.expires_after(std::chrono::seconds(http_.timeout_s));
    http::async_write(stream_, *cont,
                      [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                        if (ec) return self->abort_stream();
                        self->read_chunk();
                      });
    return;
  }
  read_chunk();
}

void HttpSession::read_chunk() {
  if (body_parser_->is_done()) return finish_stream();
  auto& body = body_parser_->get().body();
  body.data = chunk_buffer();
  body.size = kChunkBytes;
  stream_.expires_after(std::chrono::seconds(http_.timeout_s));
  // Completes with need_buffer once the chunk buffer is full, or when the body is done.
  http::async_read(stream_, buffer_, *body_parser_,
                   beast::bind_front_handler(&HttpSession::on_chunk, shared_from_this()));
}

void HttpSession::on_chunk(beast::error_code ec, size_t) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec == http::error::body_limit) return stream_too_large();
  // The client went away, timed out, or sent a malformed body: no answer.
  if (ec) return abort_stream();
  size_t got = kChunkBytes - body_parser_->get().body().size;
  body_parser_->get().body().data = nullptr;
  if (got == 0) return read_chunk();
  // The sink may be slow (a disk): no timer until the next read.
  stream_.expires_never();
  awaiting_next_ = true;
  uint64_t seq = ++chunk_seq_;
  auto self = shared_from_this();
  sink_->write(std::string_view(chunk_.get(), got), [self, seq](std::optional<HttpResponse> stop) {
    if (stop) self->sink_stopped_ = true;
    asio::post(self->stream_.get_executor(), [self, seq, stop = std::move(stop)]() mutable {
      self->on_next(seq, std::move(stop));
    });
  });
}

void HttpSession::on_next(uint64_t seq, std::optional<HttpResponse> stop) {
  if (!awaiting_next_ || seq != chunk_seq_) return;  // `next` called twice: ignored
  awaiting_next_ = false;
  if (stop) {
    sink_.reset();  // stopped by the sink itself: no abort()
    stop->version(version_);
    stop->keep_alive(false);
    return respond(std::move(*stop));
  }
  read_chunk();
}

void HttpSession::finish_stream() {
  request_done_ = true;
  auto sink = std::move(sink_);
  auto self = shared_from_this();
  sink->finish([self](HttpResponse res) {
    asio::post(self->stream_.get_executor(),
               [self, res = std::move(res)]() mutable { self->reply(HttpReply(std::move(res))); });
  });
}

void HttpSession::stream_too_large() {
  if (auto sink = std::move(sink_)) sink->abort();
  respond(json_error(version_, http::status::payload_too_large, "too_large",
                     fmt::format("request body over {} bytes", max_bytes_)));
}

void HttpSession::abort_stream() {
  if (auto sink = std::move(sink_)) sink->abort();
  drop();
}

// ---- Answers ----

void HttpSession::reply(HttpReply reply) {
  if (auto* res = std::get_if<HttpResponse>(&reply)) {
    res->version(version_);
    res->keep_alive(keep_alive_ && res->keep_alive());
    return respond(std::move(*res));
  }
  auto& streamed = std::get<StreamedResponse>(reply);
  streamed.header.version(version_);
  respond_streamed(std::move(streamed));
}

void HttpSession::respond(HttpResponse res) {
  bool keep_alive = res.keep_alive() && request_done_;
  res.keep_alive(keep_alive);
  res.set(http::field::server, "parleyd");
  auto sp = std::make_shared<HttpResponse>(std::move(res));
  stream_.expires_after(std::chrono::seconds(http_.timeout_s));
  http::async_write(stream_, *sp,
                    [self = shared_from_this(), sp, keep_alive](beast::error_code ec, size_t n) {
                      self->on_write(keep_alive, ec, n);
                    });
}

void HttpSession::respond_streamed(StreamedResponse streamed) {
  out_ = std::make_unique<Outgoing>(std::move(streamed.header));
  auto& o = *out_;
  if (!head_) o.source = std::move(streamed.body);
  auto& res = o.res;
  bool keep_alive = keep_alive_ && res.keep_alive() && request_done_;
  if (o.source && !res.chunked()) {
    // The length is the handler's (never prepare_payload: HEAD and 304 keep theirs). A body
    // without one goes chunked, or, in HTTP/1.0, ends with the connection.
    auto length = res.find(http::field::content_length) == res.end()
                      ? std::nullopt
                      : parse_length(res[http::field::content_length]);
    if (length) {
      o.remaining = length;
    } else {
      res.erase(http::field::content_length);
      if (res.version() >= 11)
        res.chunked(true);
      else
        keep_alive = false;
    }
  }
  res.keep_alive(keep_alive);
  res.set(http::field::server, "parleyd");
  o.keep_alive = keep_alive;
  stream_.expires_after(std::chrono::seconds(http_.timeout_s));
  auto self = shared_from_this();
  if (!o.source) {
    // Only the header: an empty buffer_body with more=false ends the message after it.
    res.body().data = nullptr;
    res.body().more = false;
    http::async_write(stream_, o.sr, [self](beast::error_code ec, size_t n) {
      bool keep = self->out_->keep_alive;
      self->out_.reset();
      self->on_write(keep, ec, n);
    });
    return;
  }
  http::async_write_header(stream_, o.sr, [self](beast::error_code ec, size_t) {
    if (ec) return;
    self->pull_source();
  });
}

void HttpSession::pull_source() {
  // The source may be slow (a disk, S3): no timer until the next write.
  stream_.expires_never();
  auto self = shared_from_this();
  out_->source->read([self](Result<std::string_view> chunk) {
    asio::post(self->stream_.get_executor(),
               [self, chunk = std::move(chunk)]() mutable { self->on_source(std::move(chunk)); });
  });
}

void HttpSession::on_source(Result<std::string_view> chunk) {
  auto& o = *out_;
  // An error, or a source that breaks its Content-Length: the client must see a short body.
  if (!chunk) return drop();
  std::string_view data = chunk.value();
  auto self = shared_from_this();
  stream_.expires_after(std::chrono::seconds(http_.timeout_s));
  if (data.empty()) {
    if (o.remaining && *o.remaining != 0) return drop();
    o.res.body().data = nullptr;
    o.res.body().size = 0;
    o.res.body().more = false;
    http::async_write(stream_, o.sr, [self](beast::error_code ec, size_t n) {
      bool keep = self->out_->keep_alive;
      self->out_.reset();
      self->on_write(keep, ec, n);
    });
    return;
  }
  if (o.remaining) {
    if (data.size() > *o.remaining) return drop();
    *o.remaining -= data.size();
  }
  o.res.body().data = const_cast<char*>(data.data());
  o.res.body().size = data.size();
  o.res.body().more = true;
  // Completes with need_buffer once the chunk is written.
  http::async_write(stream_, o.sr, [self](beast::error_code ec, size_t) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return;
    self->pull_source();
  });
}

void HttpSession::on_write(bool keep_alive, beast::error_code ec, size_t) {
  if (ec) return;
  if (keep_alive) return read_next();
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  if (!request_done_) linger();
}

void HttpSession::linger() {
  // The answer came before the whole request (a refusal, 413, a malformed request): the
  // client may still be sending. Closing now with its bytes unread would reset the
  // connection, and the client could lose the answer: read and drop them for a while.
  stream_.expires_after(std::chrono::seconds(http_.timeout_s));
  struct Drain {
    std::shared_ptr<HttpSession> self;
    void operator()(beast::error_code ec, size_t) {
      if (ec) return;
      auto& s = *self;
      s.stream_.async_read_some(asio::buffer(s.chunk_buffer(), kChunkBytes), std::move(*this));
    }
  };
  Drain{shared_from_this()}({}, 0);
}

void HttpSession::drop() {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
}

}  // namespace parley::net
