// Compact byte encodings: fixed big-endian integers (they sort numerically, for keys),
// varints and length-prefixed strings. Used by the RocksDB keys and values and by the Bus
// envelope codec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace parley {

class ByteWriter {
 public:
  ByteWriter& u8(uint8_t v);
  ByteWriter& u64be(uint64_t v);  // keys: sorts numerically
  ByteWriter& varint(uint64_t v);
  ByteWriter& str(std::string_view s);      // varint length + bytes
  ByteWriter& key_str(std::string_view s);  // one length byte + bytes (ids <= 255 bytes)
  std::string take() { return std::move(out_); }
  const std::string& view() const { return out_; }

 private:
  std::string out_;
};

// Reads what ByteWriter wrote; any read past the end (or a string over `max_bytes`) marks
// the reader failed, and every later read returns zero values.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  uint8_t u8();
  uint64_t u64be();
  uint64_t varint();
  std::string str(size_t max_bytes = SIZE_MAX);
  std::string key_str();
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  void fail() { ok_ = false; }

 private:
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace parley
