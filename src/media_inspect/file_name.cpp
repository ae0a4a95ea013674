#include "media_inspect/file_name.h"

#include <cstdint>
#include <vector>

#include "common/utf8.h"

namespace parley::media_inspect {
namespace {

constexpr char32_t kReplacement = 0xfffd;
// A trailing ".ext" this short is kept when a long name is cut.
constexpr size_t kMaxKeptExtensionBytes = 16;

// Strict UTF-8 (common/utf8.h), each invalid byte becoming U+FFFD.
std::vector<char32_t> decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const size_t n = utf8_decode(s.substr(i), cp);
    out.push_back(n == 0 ? kReplacement : cp);  // each bad byte becomes one U+FFFD
    i += n == 0 ? 1 : n;
  }
  return out;
}

void encode(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

size_t encoded_size(char32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

bool is_separator(char32_t cp) { return cp == '/' || cp == '\\'; }

// C0 and C1 controls, DEL, line/paragraph separators, the byte-order mark and the bidi
// controls that make "evil\u202Egpj.exe" display as "evilexe.jpg".
bool is_removed(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

bool is_space(char32_t cp) { return cp == ' ' || cp == 0xa0 || cp == 0x3000; }

void trim_end(std::vector<char32_t>& s) {
  while (!s.empty() && (is_space(s.back()) || s.back() == '.')) s.pop_back();
}

std::string to_utf8(const std::vector<char32_t>& s) {
  std::string out;
  for (char32_t cp : s) encode(cp, out);
  return out;
}

// RFC 5987 attr-char.
bool is_attr_char(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '&':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string sanitize_file_name(std::string_view name) {
  std::vector<char32_t> cps = decode(name);

  // The last non-empty path component.
  size_t end = cps.size();
  while (end > 0 && is_separator(cps[end - 1])) --end;
  size_t begin = end;
  while (begin > 0 && !is_separator(cps[begin - 1])) --begin;

  std::vector<char32_t> clean;
  for (size_t i = begin; i < end; ++i) {
    char32_t cp = cps[i];
    if (is_removed(cp)) continue;
    if (clean.empty() && (is_space(cp) || cp == '.')) continue;  // leading dots and spaces
    clean.push_back(cp);
  }
  trim_end(clean);

  // Cut to kMaxFileNameBytes on a code point boundary, keeping a short extension.
  size_t bytes = 0;
  for (char32_t cp : clean) bytes += encoded_size(cp);
  if (bytes > kMaxFileNameBytes) {
    std::vector<char32_t> ext;
    for (size_t i = clean.size(); i-- > 1;) {
      if (clean[i] != '.') continue;
      std::vector<char32_t> tail(clean.begin() + static_cast<ptrdiff_t>(i), clean.end());
      size_t tail_bytes = 0;
      for (char32_t cp : tail) tail_bytes += encoded_size(cp);
      if (tail_bytes <= kMaxKeptExtensionBytes) {
        ext = std::move(tail);
        clean.resize(i);
      }
      break;
    }
    size_t budget = kMaxFileNameBytes;
    for (char32_t cp : ext) budget -= encoded_size(cp);
    size_t kept = 0;
    size_t used = 0;
    while (kept < clean.size() && used + encoded_size(clean[kept]) <= budget) {
      used += encoded_size(clean[kept]);
      ++kept;
    }
    clean.resize(kept);
    trim_end(clean);
    clean.insert(clean.end(), ext.begin(), ext.end());
  }

  std::string out = to_utf8(clean);
  return out.empty() ? "file" : out;
}

std::string content_disposition_attachment(std::string_view name) {
  std::string safe = sanitize_file_name(name);
  std::string fallback;
  for (char32_t cp : decode(safe)) {
    bool plain = cp >= 0x20 && cp < 0x7f && cp != '"' && cp != '\\' && cp != '%';
    fallback.push_back(plain ? static_cast<char>(cp) : '_');
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : safe) {
    if (is_attr_char(c)) {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded.push_back('%');
      encoded.push_back(kHex[c >> 4]);
      encoded.push_back(kHex[c & 0xf]);
    }
  }
  return "attachment; filename=\"" + fallback + "\"; filename*=UTF-8''" + encoded;
}

}  // namespace parley::media_inspect
