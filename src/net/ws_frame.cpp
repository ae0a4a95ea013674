#include "net/ws_frame.h"

#include <algorithm>
#include <cstring>

#include "common/utf8.h"

namespace parley::net::ws {

size_t encode_header(char* out, Opcode opcode, uint64_t payload_bytes) {
  out[0] = static_cast<char>(0x80 | opcode);  // FIN
  if (payload_bytes < 126) {
    out[1] = static_cast<char>(payload_bytes);
    return 2;
  }
  if (payload_bytes <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<char>(payload_bytes >> 8);
    out[3] = static_cast<char>(payload_bytes);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<char>(payload_bytes >> (56 - 8 * i));
  return 10;
}

void append_frame(std::string& out, Opcode opcode, std::string_view payload) {
  char header[kMaxServerHeaderBytes];
  out.append(header, encode_header(header, opcode, payload.size()));
  out.append(payload);
}

void append_close(std::string& out, uint16_t code, std::string_view reason) {
  if (code == kCloseNoStatus) return append_frame(out, kClose, {});
  char payload[kMaxControlPayload];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code);
  // Cut at a character boundary: the reason must stay valid UTF-8.
  size_t n = std::min(reason.size(), kMaxControlPayload - 2);
  while (n > 0 && n < reason.size() && (static_cast<uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
  std::memcpy(payload + 2, reason.data(), n);
  append_frame(out, kClose, std::string_view(payload, 2 + n));
}

bool valid_close_code(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

size_t FrameReader::parse_header(const uint8_t* p, size_t n, uint16_t& error) {
  if (n < 2) return 0;
  const bool masked = (p[1] & 0x80) != 0;
  const uint8_t len7 = p[1] & 0x7F;
  const size_t length_bytes = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  const size_t header_bytes = 2 + length_bytes + (masked ? 4 : 0);
  if (n < header_bytes) return 0;
  // RSV bits: no extension is negotiated. Client frames must be masked (§5.1).
  if ((p[0] & 0x70) != 0 || !masked) {
    error = kCloseProtocolError;
    return 0;
  }
  uint64_t length = len7;
  if (length_bytes > 0) {
    length = 0;
    for (size_t i = 0; i < length_bytes; ++i) length = (length << 8) | p[2 + i];
    // The minimal encoding is required (§5.2), and the top bit of a 64-bit length is 0.
    const bool minimal = length_bytes == 2 ? length >= 126 : length > 0xFFFF;
    if (!minimal || (length >> 63) != 0) {
      error = kCloseProtocolError;
      return 0;
    }
  }
  fin_ = (p[0] & 0x80) != 0;
  opcode_ = p[0] & 0x0F;
  remaining_ = length;
  std::memcpy(mask_.data(), p + 2 + length_bytes, 4);
  mask_pos_ = 0;
  return header_bytes;
}

uint16_t FrameReader::begin_frame() {
  in_payload_ = true;
  const bool control = (opcode_ & 0x8) != 0;
  if (opcode_ > kBinary && opcode_ != kClose && opcode_ != kPing && opcode_ != kPong)
    return kCloseProtocolError;  // reserved opcodes
  if (control) return !fin_ || remaining_ > kMaxControlPayload ? kCloseProtocolError : 0;
  if (skipping_) return 0;  // data is dropped unread: its order no longer matters
  if ((opcode_ == kContinuation) != in_message_)
    return kCloseProtocolError;  // a continuation outside, or a new message inside, a fragmented
                                 // one
  if (opcode_ != kContinuation) message_binary_ = opcode_ == kBinary;
  if (remaining_ > max_message_bytes_ - std::min(message_.size(), max_message_bytes_))
    return kCloseTooBig;
  in_message_ = !fin_;
  return 0;
}

void FrameReader::unmask(char* p, size_t n) {
  size_t i = 0;
  if (n >= 16) {
    // Eight bytes at a time: the mask repeats every four, so its phase is the same after.
    uint8_t lanes[8];
    for (size_t k = 0; k < 8; ++k) lanes[k] = mask_[(mask_pos_ + k) & 3];
    uint64_t mask8;
    std::memcpy(&mask8, lanes, 8);
    for (; i + 8 <= n; i += 8) {
      uint64_t v;
      std::memcpy(&v, p + i, 8);
      v ^= mask8;
      std::memcpy(p + i, &v, 8);
    }
  }
  for (; i < n; ++i) {
    p[i] = static_cast<char>(p[i] ^ mask_[mask_pos_]);
    mask_pos_ = (mask_pos_ + 1) & 3;
  }
}

void FrameReader::fail(bool framing_intact) {
  skipping_ = true;
  if (!framing_intact) broken_ = true;
  message_ = std::string();
  control_ = std::string();
  in_message_ = false;
}

uint16_t FrameReader::feed(char* data, size_t size, Events& events) {
  uint16_t first_error = 0;
  auto error = [&](uint16_t code, bool framing_intact) {
    fail(framing_intact);
    if (first_error == 0) first_error = code;
    if (error_ == 0) error_ = code;
  };
  while (size > 0 && !broken_) {
    if (!in_payload_) {
      uint16_t header_error = 0;
      size_t used = 0;
      if (header_bytes_ > 0) {
        // Complete a header cut by the previous chunk.
        size_t take = std::min(size, header_.size() - header_bytes_);
        std::memcpy(header_.data() + header_bytes_, data, take);
        size_t header = parse_header(header_.data(), header_bytes_ + take, header_error);
        if (header_error == 0 && header == 0) {
          header_bytes_ += static_cast<uint8_t>(take);
          return first_error;
        }
        used = header - std::min<size_t>(header, header_bytes_);
      } else {
        size_t header = parse_header(reinterpret_cast<const uint8_t*>(data), size, header_error);
        if (header_error == 0 && header == 0) {
          std::memcpy(header_.data(), data, size);
          header_bytes_ = static_cast<uint8_t>(size);
          return first_error;
        }
        used = header;
      }
      header_bytes_ = 0;
      if (header_error != 0) {
        error(header_error, false);
        break;
      }
      data += used;
      size -= used;
      if (uint16_t code = begin_frame(); code != 0) {
        // An oversized data frame leaves the framing intact: its payload is skipped.
        error(code, code == kCloseTooBig);
        if (broken_) break;
      }
    }

    const bool control = (opcode_ & 0x8) != 0;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, size));
    char* payload = data;
    data += n;
    size -= n;
    remaining_ -= n;
    const bool frame_done = remaining_ == 0;
    if (frame_done) in_payload_ = false;

    if (skipping_ && !(control && opcode_ == kClose)) continue;  // dropped unread
    unmask(payload, n);
    std::string& parts = control ? control_ : message_;
    std::string_view whole;
    if (frame_done && parts.empty() && (control || fin_)) {
      whole = std::string_view(payload, n);  // the common case: no copy
    } else {
      parts.append(payload, n);
      if (!frame_done || (!control && !fin_)) continue;
      whole = parts;
    }

    if (control) {
      if (opcode_ == kPing) {
        events.on_ping(whole);
      } else if (opcode_ == kClose) {
        uint16_t code = kCloseNoStatus;
        std::string_view reason;
        if (whole.size() == 1) {
          error(kCloseProtocolError, false);
          break;
        }
        if (whole.size() >= 2) {
          code = static_cast<uint16_t>((static_cast<uint8_t>(whole[0]) << 8) |
                                       static_cast<uint8_t>(whole[1]));
          reason = whole.substr(2);
          if (!valid_close_code(code)) {
            error(kCloseProtocolError, false);
            break;
          }
          if (!valid_utf8(reason)) {
            error(kCloseInvalidPayload, false);
            break;
          }
        }
        events.on_close_frame(code, reason);
        fail(false);  // nothing follows a close frame
      }
      control_ = std::string();
      continue;
    }

    // A whole message.
    if (!message_binary_ && !valid_utf8(whole)) {
      error(kCloseInvalidPayload, true);
      continue;
    }
    const bool go_on = events.on_message(whole, message_binary_);
    message_ = std::string();  // an idle reader holds no buffer
    if (!go_on) fail(true);
  }
  return first_error;
}

}  // namespace parley::net::ws
