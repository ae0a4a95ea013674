#include "support/server_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

namespace parley::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(20);

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "...\n" + text.substr(text.size() - max_bytes);
}

std::string toml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

// Parses "... listening on 127.0.0.1:PORT ..." and returns PORT.
std::optional<std::uint16_t> parse_listening_line(const std::string& line) {
  static constexpr std::string_view kMarker = "listening on ";
  auto pos = line.find(kMarker);
  if (pos == std::string::npos) return std::nullopt;
  std::string rest = line.substr(pos + kMarker.size());
  auto end = rest.find_first_of(" \t\r\n");
  if (end != std::string::npos) rest.resize(end);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  try {
    std::size_t used = 0;
    int port = std::stoi(rest.substr(colon + 1), &used);
    if (port <= 0 || port > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(port);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

TomlConfig& TomlConfig::set(const std::string& section, const std::string& key,
                            const std::string& literal) {
  sections_[section][key] = literal;
  return *this;
}

TomlConfig& TomlConfig::set_string(const std::string& section, const std::string& key,
                                   const std::string& value) {
  return set(section, key, "\"" + toml_escape(value) + "\"");
}

std::string TomlConfig::to_string() const {
  std::ostringstream out;
  for (const auto& [section, keys] : sections_) {
    out << '[' << section << "]\n";
    for (const auto& [key, literal] : keys) out << key << " = " << literal << '\n';
    out << '\n';
  }
  return out.str();
}

TomlConfig TomlConfig::test_defaults() {
  TomlConfig c;
  c.set("auth", "argon2_opslimit", "1");
  c.set("auth", "argon2_memlimit_kib", "8192");
  c.set("server", "threads", "2");
  c.set_string("log", "level", "info");
  return c;
}

int ServerProcess::failures_so_far() {
  const auto* unit = ::testing::UnitTest::GetInstance();
  return unit->failed_test_count() + unit->ad_hoc_test_result().total_part_count() +
         (::testing::Test::HasFailure() ? 1 : 0);
}

ServerProcess::ServerProcess(TomlConfig config) : failures_at_start_(failures_so_far()) {
  const char* bin = std::getenv("PARLEYD_BIN");
  if (bin == nullptr || *bin == '\0') {
    throw std::runtime_error("PARLEYD_BIN is not set (run the test through ctest)");
  }
  binary_ = bin;
  std::filesystem::path base = std::filesystem::temp_directory_path();
  std::string templ = (base / "parley-it-XXXXXX").string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp");
  }
  root_ = buf.data();
  data_dir_ = root_ / "data";
  config_path_ = root_ / "parleyd.toml";
  stderr_path_ = root_ / "stderr.log";
  stdout_path_ = root_ / "stdout.log";
  std::filesystem::create_directories(data_dir_);
  {
    std::ofstream out(config_path_);
    out << config.to_string();
  }
  try {
    start();
  } catch (...) {
    dump_diagnostics();
    if (alive()) kill();
    child_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
    throw;
  }
}

ServerProcess::~ServerProcess() {
  if (failures_so_far() > failures_at_start_) dump_diagnostics();
  if (alive()) kill();
  child_.reset();
  const char* keep = std::getenv("PARLEY_TEST_KEEP_TMP");
  if (keep != nullptr && *keep != '\0' && *keep != '0') {
    std::cerr << "[parley-test] kept " << root_ << '\n';
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

void ServerProcess::start() {
  port_ = 0;
  child_.reset();
  ChildProcess::Options o;
  o.argv = {binary_,
            "--listen",
            host_ + ":" + std::to_string(listen_port_),
            "--data-dir",
            data_dir_.string(),
            "--config",
            config_path_.string()};
  o.out = ChildProcess::Output::pipe(stdout_path_);
  o.err = ChildProcess::Output::file(stderr_path_, /*append=*/true);
  child_ = std::make_unique<ChildProcess>(std::move(o));  // throws if it cannot start

  auto line = child_->wait_for_line(
      ChildProcess::Stream::out,
      [](std::string_view l) { return parse_listening_line(std::string(l)).has_value(); },
      kStartTimeout);
  if (line) {
    port_ = *parse_listening_line(*line);
    return;
  }
  std::string why;
  if (child_->running()) {
    why = "parleyd did not print 'listening on' within 20 s";
    child_->kill();
  } else {
    why = "parleyd exited before printing 'listening on' (" + child_->wait().describe() + ")";
  }
  throw std::runtime_error(why + "\n--- stderr ---\n" + tail(stderr_text(), 8000) +
                           "\n--- stdout ---\n" + tail(stdout_text(), 4000));
}

bool ServerProcess::alive() { return child_ && child_->running(); }

void ServerProcess::terminate() {
  if (alive()) child_->signal(SIGTERM);
}

std::optional<ExitStatus> ServerProcess::wait(std::chrono::milliseconds timeout) {
  if (!child_) return std::nullopt;  // never started
  return child_->wait_for(timeout);
}

ExitStatus ServerProcess::stop(std::chrono::milliseconds timeout) {
  terminate();
  if (auto st = wait(timeout)) return *st;
  ADD_FAILURE() << "parleyd did not exit within " << timeout.count()
                << " ms of SIGTERM; killing it";
  return kill();
}

ExitStatus ServerProcess::kill() { return child_ ? child_->kill() : ExitStatus{}; }

void ServerProcess::restart() {
  if (alive()) throw std::logic_error("ServerProcess::restart while the server is running");
  start();
}

void ServerProcess::restart(std::uint16_t port) {
  if (alive()) throw std::logic_error("ServerProcess::restart while the server is running");
  listen_port_ = port;
  // Right after a kill the port can still be taken for a moment; parleyd then exits at once.
  for (int attempt = 1;; ++attempt) {
    try {
      start();
      return;
    } catch (const std::runtime_error&) {
      if (attempt == 20) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::string ServerProcess::stderr_text() const { return read_file(stderr_path_); }
std::string ServerProcess::stdout_text() const { return read_file(stdout_path_); }

void ServerProcess::dump_diagnostics() const {
  std::cerr << "[parley-test] parleyd (pid " << pid() << ", data " << data_dir_ << ") stderr:\n"
            << tail(stderr_text(), 16000) << "\n[parley-test] parleyd stdout:\n"
            << tail(stdout_text(), 8000) << '\n';
}

}  // namespace parley::test
