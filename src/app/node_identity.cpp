#include "app/node_identity.h"

#include <fmt/format.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace parley::app {
namespace {

constexpr size_t kNameBytes = 16;

// Not inlined: GCC 12 misreads the length check below as a bound on the string's storage
// and warns (-Warray-bounds) about the move that returns the name.
[[gnu::noinline]] bool valid_name(const std::string& s) {
  return s.size() == 2 * kNameBytes && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

}  // namespace

Result<std::string> node_instance(const std::string& data_dir) {
  namespace fs = std::filesystem;
  const fs::path path = fs::path(data_dir) / "node-instance";
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec)
    return Error{Errc::unavailable, fmt::format("cannot create {}: {}", data_dir, ec.message())};
  if (std::ifstream in(path); in) {
    std::string name;
    std::getline(in, name);
    if (!valid_name(name))
      return Error{Errc::bad_request,
                   fmt::format("{} does not hold a node instance name; remove it to make a new one",
                               path.string())};
    return name;
  }
  if (sodium_init() < 0) return Error{Errc::internal, "libsodium failed to initialise"};
  unsigned char bytes[kNameBytes];
  randombytes_buf(bytes, sizeof bytes);
  char hex[2 * kNameBytes + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  const std::string name(hex, 2 * kNameBytes);
  // Written aside and renamed: a crash never leaves half a name.
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << name << '\n';
    if (!out.flush()) return Error{Errc::unavailable, fmt::format("cannot write {}", tmp.string())};
  }
  fs::rename(tmp, path, ec);
  if (ec)
    return Error{Errc::unavailable,
                 fmt::format("cannot write {}: {}", path.string(), ec.message())};
  return name;
}

}  // namespace parley::app
