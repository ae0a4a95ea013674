// Minimal files of the types phones and office software produce, as their first bytes look
// to libmagic (header-only: used by the media_inspect unit test and the media integration
// test).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace parley::test {

inline std::string be32_bytes(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// An ISO base media file head (HEIC, QuickTime, 3GPP, ...): an ftyp box with the major
// `brand` and the `compatible` brands, then an empty box of type `next`.
inline std::string iso_file(std::string_view brand, std::string_view compatible,
                            std::string_view next) {
  std::string payload = std::string(brand) + std::string(4, '\0') + std::string(compatible);
  return be32_bytes(static_cast<uint32_t>(8 + payload.size())) + "ftyp" + payload + be32_bytes(72) +
         std::string(next) + std::string(64, '\0');
}

// A zip of stored entries, in order, as office software writes its documents (local
// headers only, which is what libmagic reads).
inline std::string zip_of(
    std::initializer_list<std::pair<std::string_view, std::string_view>> entries) {
  auto le16 = [](uint16_t v) { return std::string{char(v & 0xff), char(v >> 8)}; };
  auto le32 = [&](uint32_t v) { return le16(v & 0xffff) + le16(v >> 16); };
  std::string out;
  for (const auto& [name, data] : entries) {
    out += "PK\x03\x04" + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) +
           le32(static_cast<uint32_t>(data.size())) + le32(static_cast<uint32_t>(data.size())) +
           le16(static_cast<uint16_t>(name.size())) + le16(0);
    out += name;
    out += data;
  }
  return out + "PK\x05\x06" + std::string(18, '\0');
}

}  // namespace parley::test
