#include "cli/password.h"

#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cli/cli.h"

namespace parley::cli {

std::string ReadPassword(const std::string& prompt) {
  if (const char* env = std::getenv("PARLEY_PASSWORD"); env && env[0]) return env;
  std::string line;
  if (::isatty(STDIN_FILENO)) {
    std::cerr << prompt << std::flush;
    termios old{};
    bool restore = ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (restore) {
      termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      quiet.c_lflag |= ECHONL;
      ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::getline(std::cin, line);
    if (restore) ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
  } else {
    std::getline(std::cin, line);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) {
    throw UsageError("no password: set PARLEY_PASSWORD, type it on a terminal, or pipe it in");
  }
  return line;
}

}  // namespace parley::cli
