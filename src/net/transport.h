// What the chat layer sees of a connection, and what the transport sees of the chat layer.
// net/ knows nothing of chats (STYLE.md §2.5): it moves frames and HTTP messages.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/errc.h"

namespace parley::net {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using HttpRequestHeader = boost::beast::http::request_header<>;
using HttpResponseHeader = boost::beast::http::response_header<>;

// A request body streamed to the handler in chunks (uploads), instead of read whole.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // The next chunk of the body, at most 64 KiB. `chunk` stays valid until `next` is called.
  // Call `next` exactly once, on any thread: with nullopt to receive the next chunk
  // (backpressure: no more is read from the socket until then, and no timeout runs
  // meanwhile), or with a response to stop reading, answer with it and close the
  // connection. Never called with an empty chunk, nor again before `next`.
  virtual void write(std::string_view chunk,
                     std::function<void(std::optional<HttpResponse>)> next) = 0;
  // The whole body has arrived: answer through `done` (once, any thread).
  virtual void finish(std::function<void(HttpResponse)> done) = 0;
  // The body will not arrive whole: the client went away, timed out, sent more than
  // `max_bytes` or a malformed body. Drop what was received; nothing is answered (over the
  // limit, the session itself answers 413). Not called after finish or a stopping write.
  virtual void abort() = 0;
};

// What open_stream decides for a request whose body is to be streamed.
struct StreamStart {
  std::shared_ptr<BodySink> sink;       // set: read the body into it
  std::optional<HttpResponse> refusal;  // else: answer this without reading the body (the
                                        // connection is closed afterwards)
  uint64_t max_bytes = 0;               // with a sink: more than this is a 413 and abort()
                                        // (at once for a Content-Length over it)
};

// A response body produced in chunks (downloads).
class BodySource {
 public:
  virtual ~BodySource() = default;
  // Produces the next chunk: `done` (once, any thread) with a non-empty chunk, with an
  // empty one at the end, or with an error, which drops the connection (the client sees a
  // short body). The chunk stays valid until the next read() or the source's destruction.
  // The session reads the next chunk only once the previous one is written.
  virtual void read(std::function<void(Result<std::string_view>)> done) = 0;
};

// A response whose body is streamed: `header` carries the status and every field, with
// Content-Length set; the source gives exactly that many bytes (a source that gives more
// or fewer has the connection dropped; without a Content-Length the body goes chunked). A
// null `body` sends only the header, its Content-Length untouched (HEAD, 304); the body is
// never sent in answer to HEAD.
struct StreamedResponse {
  HttpResponseHeader header;
  std::shared_ptr<BodySource> body;
};

// What a handler answers with.
using HttpReply = std::variant<HttpResponse, StreamedResponse>;

// What a frame is to the connection's bounds. Pushes are what the server sends by itself:
// a client that does not read them is a slow consumer. Answers are what the client asked
// for: a client that pipelines requests may have several large answers waiting, without
// being slow, so answers have a bound of their own (docs/PROTOCOL.md §3.1).
enum class FrameKind : uint8_t { push, answer };

// One WebSocket connection. Every method is safe to call from any thread.
class Transport {
 public:
  virtual ~Transport() = default;
  // Queues a text frame, in order with every other frame. Past ws.max_send_queue_bytes of
  // pushes (and wire bytes not yet written), or ws.max_answer_queue_bytes of answers, the
  // connection is closed with 4008 (slow consumer) instead of buffering more.
  virtual void send(std::shared_ptr<const std::string> frame, FrameKind kind) = 0;
  void send(std::shared_ptr<const std::string> frame) { send(std::move(frame), FrameKind::push); }
  // Sends what is queued, then the close frame.
  virtual void close(uint16_t code, std::string reason) = 0;
  // From now on, frames queued together may go out as one WebSocket message holding them
  // separated by '\n' (docs/PROTOCOL.md §3.1: a client opts in at auth). Each frame must be
  // one line of JSON (no raw newline), as every serializer of proto/ produces.
  virtual void set_batching(bool on) = 0;
  // Unique per process.
  virtual uint64_t id() const = 0;
  // The connection's thread: post here to run alongside its handler.
  virtual boost::asio::any_io_executor executor() const = 0;
};

// The chat side of one connection. Called only on the connection's thread.
class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void on_frame(std::string_view text, bool binary) = 0;
  virtual void on_close() = 0;
};

class WsService {
 public:
  virtual ~WsService() = default;
  virtual std::shared_ptr<WsHandler> on_open(std::shared_ptr<Transport> transport) = 0;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // `done` may be called on any thread, exactly once.
  virtual void handle(HttpRequest request, std::function<void(HttpReply)> done) = 0;
  // Called on the connection's thread with the header of each request before its body is
  // read: true to stream this request's body through open_stream() instead of reading it
  // whole (up to http.body_limit) for handle().
  virtual bool streams(const HttpRequestHeader& /*header*/) const { return false; }
  // For a request streams() took: accept (a sink) or refuse (a response) it, once, on any
  // thread. An `Expect: 100-continue` is answered only once a sink is given.
  virtual void open_stream(HttpRequestHeader header, std::function<void(StreamStart)> done) {
    StreamStart refuse;
    refuse.refusal.emplace(boost::beast::http::status::not_found, header.version());
    refuse.refusal->prepare_payload();
    done(std::move(refuse));
  }
};

}  // namespace parley::net
