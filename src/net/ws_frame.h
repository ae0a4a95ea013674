// RFC 6455 framing for the server side, without I/O: an incremental reader of client frames
// and the encoder of server frame headers. The connection (ws_connection) owns the socket;
// this file only turns bytes into messages and back.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::net::ws {

enum Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes the transport itself sends (RFC 6455 §7.4.1).
enum CloseCode : uint16_t {
  kCloseNormal = 1000,
  kCloseGoingAway = 1001,
  kCloseProtocolError = 1002,
  kCloseNoStatus = 1005,  // never on the wire: a close frame without a code
  kCloseInvalidPayload = 1007,
  kCloseTooBig = 1009,
};

// Longest header of a server frame: 2 bytes, then a 64-bit length (no mask).
constexpr size_t kMaxServerHeaderBytes = 10;
// Control frames carry at most this many payload bytes, and are never fragmented.
constexpr size_t kMaxControlPayload = 125;

// Writes the header of an unmasked, final server frame of `payload_bytes` to `out`;
// returns its length (2, 4 or 10).
size_t encode_header(char* out, Opcode opcode, uint64_t payload_bytes);

// Appends a whole control or data frame (header and payload) to `out`.
void append_frame(std::string& out, Opcode opcode, std::string_view payload);

// Appends a close frame: the code (omitted for kCloseNoStatus) and the reason, cut to fit
// the 125 bytes of a control frame.
void append_close(std::string& out, uint16_t code, std::string_view reason);

// True for a close code a peer may send (RFC 6455 §7.4: 1000-1003, 1007-1014, 3000-4999).
bool valid_close_code(uint16_t code);

// Parses the frames a client sends, a chunk of bytes at a time, and reports whole messages.
// Holds the state of a frame cut between two chunks (at most a 14-byte header) and, only
// while a message is incomplete, the part of it received so far. It checks what the RFC
// asks of a server: frames masked, no RSV bits (no extension is negotiated), known opcodes,
// control frames final and at most 125 bytes, continuations only inside a fragmented
// message, minimal length encodings; messages at most `max_message_bytes` (1009), text
// messages and close reasons valid UTF-8 (1007).
class FrameReader {
 public:
  class Events {
   public:
    virtual ~Events() = default;
    // A whole message. `payload` points into the chunk given to feed() or into the reader:
    // valid only during the call. Return false to stop reading (the connection is closing).
    virtual bool on_message(std::string_view payload, bool binary) = 0;
    virtual void on_ping(std::string_view payload) = 0;
    // The client's close frame: `code` is kCloseNoStatus when it carried none. Nothing is
    // parsed after it.
    virtual void on_close_frame(uint16_t code, std::string_view reason) = 0;
  };

  explicit FrameReader(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // Parses `size` bytes at `data`, unmasking payloads in place. Returns 0, or the close
  // code of the first protocol error; after an error or a close frame the reader only
  // skips what follows (see skipping()), still reporting a close frame if the framing
  // is intact (an error in a payload, not in a header).
  uint16_t feed(char* data, size_t size, Events& events);

  // True once an error or a close frame ended the message stream.
  bool stopped() const { return skipping_; }
  // True once nothing more can be parsed (after a header error or a close frame).
  bool framing_lost() const { return broken_; }
  // The close code of the first protocol error so far, or 0: what feed() returns, known
  // already while it still reports a close frame that followed the error.
  uint16_t error() const { return error_; }
  // True if nothing is buffered: no partial header, no partial message (an idle reader
  // holds no heap memory).
  bool idle() const { return header_bytes_ == 0 && message_.empty() && !in_payload_; }

 private:
  // Parses a header from `p` (n bytes available). Returns its length, 0 if more bytes are
  // needed, or sets `error`.
  size_t parse_header(const uint8_t* p, size_t n, uint16_t& error);
  uint16_t begin_frame();
  void unmask(char* p, size_t n);
  void fail(bool framing_intact);

  const size_t max_message_bytes_;
  // A header cut between two chunks.
  std::array<uint8_t, 14> header_{};
  uint8_t header_bytes_ = 0;
  // The frame being read.
  bool in_payload_ = false;
  bool fin_ = false;
  uint8_t opcode_ = 0;
  std::array<uint8_t, 4> mask_{};
  uint8_t mask_pos_ = 0;
  uint64_t remaining_ = 0;  // payload bytes of the frame still to come
  // The message being assembled: data frames that did not arrive whole in one chunk, or
  // a fragmented message. A control frame cut between chunks goes into control_.
  std::string message_;
  std::string control_;
  bool in_message_ = false;  // a fragmented message waits for its continuation frames
  bool message_binary_ = false;
  bool skipping_ = false;  // after an error, a close frame or a handler stop: payloads dropped
  bool broken_ = false;    // after a header error: everything is dropped
  uint16_t error_ = 0;
};

}  // namespace parley::net::ws
