#include "common/bytes.h"

namespace parley {

ByteWriter& ByteWriter::u8(uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

ByteWriter& ByteWriter::u64be(uint64_t v) {
  for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return *this;
}

ByteWriter& ByteWriter::varint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
  return *this;
}

ByteWriter& ByteWriter::str(std::string_view s) {
  varint(s.size());
  out_.append(s);
  return *this;
}

ByteWriter& ByteWriter::key_str(std::string_view s) {
  u8(static_cast<uint8_t>(s.size() > 255 ? 255 : s.size()));
  out_.append(s.substr(0, 255));
  return *this;
}

uint8_t ByteReader::u8() {
  if (!ok_ || in_.empty()) {
    ok_ = false;
    return 0;
  }
  uint8_t v = static_cast<uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return v;
}

uint64_t ByteReader::u64be() {
  if (!ok_ || in_.size() < 8) {
    ok_ = false;
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in_[i]);
  in_.remove_prefix(8);
  return v;
}

uint64_t ByteReader::varint() {
  if (!ok_) return 0;
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in_.empty()) break;
    uint8_t b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  ok_ = false;
  return 0;
}

std::string ByteReader::str(size_t max_bytes) {
  uint64_t n = varint();
  if (!ok_ || n > in_.size() || n > max_bytes) {
    ok_ = false;
    return {};
  }
  std::string s(in_.substr(0, n));
  in_.remove_prefix(n);
  return s;
}

std::string ByteReader::key_str() {
  uint8_t n = u8();
  if (!ok_ || n > in_.size()) {
    ok_ = false;
    return {};
  }
  std::string s(in_.substr(0, n));
  in_.remove_prefix(n);
  return s;
}

}  // namespace parley
