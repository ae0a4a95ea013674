#include "parley/cursor_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "parley/error.h"

namespace parley {
namespace {

[[noreturn]] void Fail(const std::string& what, const std::string& path, int err) {
  throw Error(errc::kIo, what + " " + path + ": " + std::strerror(err));
}

}  // namespace

std::optional<int64_t> LoadCursorFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text;
  std::getline(in, text);
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
  int64_t pts = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pts);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || pts < 0) {
    return std::nullopt;
  }
  return pts;
}

void SaveCursorFile(const std::string& path, int64_t pts) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) Fail("create", tmp, errno);
  std::string text = std::to_string(pts) + "\n";
  ssize_t n = ::write(fd, text.data(), text.size());
  int write_errno = errno;
  if (::close(fd) != 0 && n >= 0) {
    n = -1;
    write_errno = errno;
  }
  if (n != static_cast<ssize_t>(text.size())) {
    ::unlink(tmp.c_str());
    Fail("write", tmp, n < 0 ? write_errno : EIO);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    Fail("rename to", path, err);
  }
}

}  // namespace parley
