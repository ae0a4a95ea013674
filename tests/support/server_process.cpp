#include "support/server_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>
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

ExitStatus to_exit_status(int status) {
  ExitStatus st;
  if (WIFEXITED(status)) {
    st.exited = true;
    st.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    st.signal = WTERMSIG(status);
  }
  return st;
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

std::string ExitStatus::describe() const {
  if (exited) return "exited with status " + std::to_string(code);
  if (signal != 0) return std::string("killed by signal ") + strsignal(signal);
  return "unknown status";
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
    join_reader();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
    throw;
  }
}

ServerProcess::~ServerProcess() {
  if (failures_so_far() > failures_at_start_) dump_diagnostics();
  if (alive()) kill();
  join_reader();
  const char* keep = std::getenv("PARLEY_TEST_KEEP_TMP");
  if (keep != nullptr && *keep != '\0' && *keep != '0') {
    std::cerr << "[parley-test] kept " << root_ << '\n';
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

void ServerProcess::start() {
  {
    std::lock_guard lock(mu_);
    announced_port_.reset();
    stdout_eof_ = false;
  }
  exit_status_.reset();
  port_ = 0;

  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
  int err_fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (err_fd < 0 || null_fd < 0) throw std::system_error(errno, std::generic_category(), "open");

  std::vector<std::string> args = {
      binary_,    "--listen",           host_ + ":0", "--data-dir", data_dir_.string(),
      "--config", config_path_.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    dup2(null_fd, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    // Do not leak the test's sockets (or other servers' pipes) into the server.
    if (close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 4096; ++fd) close(fd);
    }
    execv(argv[0], argv.data());
    static constexpr char kMsg[] = "parley-test: execv of PARLEYD_BIN failed\n";
    ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    (void)ignored;
    _exit(127);
  }
  pid_ = pid;
  close(out_pipe[1]);
  close(err_fd);
  close(null_fd);
  reader_ = std::thread([this, fd = out_pipe[0]] { reader_loop(fd); });

  std::unique_lock lock(mu_);
  bool ready = cv_.wait_for(lock, kStartTimeout,
                            [this] { return announced_port_.has_value() || stdout_eof_; });
  if (announced_port_) {
    port_ = *announced_port_;
    return;
  }
  lock.unlock();
  std::string why = ready ? "parleyd closed stdout before printing 'listening on'"
                          : "parleyd did not print 'listening on' within 20 s";
  if (alive()) {
    kill();
  } else if (exit_status_) {
    why += " (" + exit_status_->describe() + ")";
  }
  throw std::runtime_error(why + "\n--- stderr ---\n" + tail(stderr_text(), 8000) +
                           "\n--- stdout ---\n" + tail(stdout_text(), 4000));
}

void ServerProcess::reader_loop(int fd) {
  std::ofstream log(stdout_path_, std::ios::app | std::ios::binary);
  std::string pending;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    log.write(buf, n);
    log.flush();
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      std::lock_guard lock(mu_);
      if (!announced_port_) {
        if (auto p = parse_listening_line(line)) {
          announced_port_ = p;
          cv_.notify_all();
        }
      }
    }
  }
  ::close(fd);
  std::lock_guard lock(mu_);
  stdout_eof_ = true;
  cv_.notify_all();
}

void ServerProcess::join_reader() {
  if (reader_.joinable()) reader_.join();
}

bool ServerProcess::alive() {
  if (pid_ < 0 || exit_status_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = to_exit_status(status);
    return false;
  }
  return r == 0;
}

void ServerProcess::terminate() {
  if (alive()) ::kill(pid_, SIGTERM);
}

std::optional<ExitStatus> ServerProcess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!alive()) {
      if (exit_status_) {
        join_reader();
        return exit_status_;
      }
      return std::nullopt;  // never started
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

ExitStatus ServerProcess::stop(std::chrono::milliseconds timeout) {
  terminate();
  if (auto st = wait(timeout)) return *st;
  ADD_FAILURE() << "parleyd did not exit within " << timeout.count()
                << " ms of SIGTERM; killing it";
  return kill();
}

ExitStatus ServerProcess::kill() {
  if (alive()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    exit_status_ = to_exit_status(status);
  }
  join_reader();
  return exit_status_.value_or(ExitStatus{});
}

void ServerProcess::restart() {
  if (alive()) throw std::logic_error("ServerProcess::restart while the server is running");
  join_reader();
  start();
}

std::string ServerProcess::stderr_text() const { return read_file(stderr_path_); }
std::string ServerProcess::stdout_text() const { return read_file(stdout_path_); }

void ServerProcess::dump_diagnostics() const {
  std::cerr << "[parley-test] parleyd (pid " << pid_ << ", data " << data_dir_ << ") stderr:\n"
            << tail(stderr_text(), 16000) << "\n[parley-test] parleyd stdout:\n"
            << tail(stdout_text(), 8000) << '\n';
}

}  // namespace parley::test
