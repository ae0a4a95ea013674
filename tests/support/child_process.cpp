#include "support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace parley::test {
namespace {

using Clock = std::chrono::steady_clock;

// Closes a descriptor when it goes out of scope (start() has several ways to fail).
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

std::string errno_text(int err) { return std::strerror(err); }

std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
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

// What the child reports on the exec-error pipe when it cannot run the program.
enum class Stage : int { chdir, redirect, exec, parent_gone };
struct ChildFailure {
  Stage stage;
  int err;
};

const char* stage_text(Stage s) {
  switch (s) {
    case Stage::chdir:
      return "chdir";
    case Stage::redirect:
      return "redirecting stdio";
    case Stage::exec:
      return "exec";
    case Stage::parent_gone:
      return "the test exited";
  }
  return "?";
}

// The program's path: argv[0] itself when it names a path, else the first executable
// regular file of that name on `path_var` (execvp's rule, done before fork because the
// child may only make async-signal-safe calls).
std::string resolve(const std::string& name, const std::string& path_var) {
  if (name.find('/') != std::string::npos) return name;
  std::size_t pos = 0;
  while (pos <= path_var.size()) {
    std::size_t end = path_var.find(':', pos);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = end > pos ? path_var.substr(pos, end - pos) : ".";
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    pos = end + 1;
  }
  return {};
}

Fd open_or_throw(const std::filesystem::path& path, int flags, const std::string& what) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("ChildProcess: cannot open " + path.string() + " for " + what + ": " +
                             errno_text(errno));
  }
  return Fd(fd);
}

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) return "exited with status " + std::to_string(code);
  if (signal != 0) return std::string("killed by signal ") + strsignal(signal);
  return "unknown status";
}

ChildProcess::ChildProcess(Options options) : options_(std::move(options)) { start(); }

ChildProcess::~ChildProcess() {
  bool exited;
  {
    std::lock_guard lock(status_mu_);
    exited = poll_exit_locked();
  }
  if (!exited) terminate();
  finish_reader();
}

void ChildProcess::start() {
  if (options_.argv.empty()) throw std::runtime_error("ChildProcess: empty argv");
  const std::string& name = options_.argv[0];

  // The environment, built before fork.
  std::map<std::string, std::string> env;
  if (options_.inherit_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv(*e);
      auto eq = kv.find('=');
      if (eq == std::string_view::npos) continue;
      env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  for (const auto& [k, v] : options_.env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = options_.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  auto path_it = env.find("PATH");
  const std::string program =
      resolve(name, path_it != env.end() ? path_it->second : "/bin:/usr/bin");
  if (program.empty()) {
    throw std::runtime_error("ChildProcess: cannot start '" + name + "': not found on PATH");
  }

  // stdin: /dev/null, or the text in a memfd (a file that needs no writer thread and never
  // blocks, whatever its size; the child reads it to EOF like a redirected file).
  Fd in_fd;
  if (options_.stdin_text) {
    in_fd.reset(::memfd_create("child-stdin", MFD_CLOEXEC));
    if (in_fd.fd < 0) throw std::runtime_error("ChildProcess: memfd_create: " + errno_text(errno));
    const std::string& text = *options_.stdin_text;
    std::size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::write(in_fd.fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("ChildProcess: writing stdin: " + errno_text(errno));
      done += static_cast<std::size_t>(n);
    }
    ::lseek(in_fd.fd, 0, SEEK_SET);
  } else {
    in_fd = open_or_throw("/dev/null", O_RDONLY, "stdin");
  }

  // stdout / stderr: the child's end (-1: inherit) and, for pipes, our read end.
  Fd child_fd[2];
  Fd read_fd[2];
  for (int i = 0; i < 2; ++i) {
    const Output& o = i == 0 ? options_.out : options_.err;
    const std::string what = i == 0 ? "stdout" : "stderr";
    switch (o.kind) {
      case Output::Kind::pipe: {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) {
          throw std::runtime_error("ChildProcess: pipe: " + errno_text(errno));
        }
        read_fd[i].reset(p[0]);
        child_fd[i].reset(p[1]);
        break;
      }
      case Output::Kind::file:
        child_fd[i] =
            open_or_throw(o.path, O_WRONLY | O_CREAT | (o.append ? O_APPEND : O_TRUNC), what);
        break;
      case Output::Kind::null:
        child_fd[i] = open_or_throw("/dev/null", O_WRONLY, what);
        break;
      case Output::Kind::inherit:
        break;
    }
  }

  // The child writes a ChildFailure here if it cannot exec; exec closes it (CLOEXEC), so EOF
  // on our end means the program runs.
  int ep[2];
  if (::pipe2(ep, O_CLOEXEC) != 0)
    throw std::runtime_error("ChildProcess: pipe: " + errno_text(errno));
  Fd err_r(ep[0]);
  Fd err_w(ep[1]);

  const char* cwd = options_.cwd.empty() ? nullptr : options_.cwd.c_str();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("ChildProcess: fork: " + errno_text(errno));
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    auto fail = [&](Stage stage) {
      ChildFailure f{stage, errno};
      ssize_t ignored = ::write(err_w.fd, &f, sizeof f);
      (void)ignored;
      ::_exit(127);
    };
    ::setpgid(0, 0);  // its own group: a kill of the group reaches what it starts
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) fail(Stage::parent_gone);  // the test died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the test thread's mask is not the child's
    if (cwd != nullptr && ::chdir(cwd) != 0) fail(Stage::chdir);
    const int wanted[3] = {in_fd.fd, child_fd[0].fd, child_fd[1].fd};
    for (int target = 0; target < 3; ++target) {
      int fd = wanted[target];
      if (fd < 0) continue;  // inherit
      if (fd == target) {
        if (::fcntl(fd, F_SETFD, 0) != 0) fail(Stage::redirect);
      } else if (::dup2(fd, target) < 0) {
        fail(Stage::redirect);
      }
    }
    // Leak none of the test's descriptors (sockets, other children's pipes) into the child;
    // only the CLOEXEC error pipe stays until exec.
    const int keep = err_w.fd;
    bool closed =
        (keep <= 3 || ::close_range(3, keep - 1, 0) == 0) && ::close_range(keep + 1, ~0U, 0) == 0;
    if (!closed) {
      for (int fd = 3; fd < 4096; ++fd) {
        if (fd != keep) ::close(fd);
      }
    }
    ::execve(program.c_str(), argv.data(), envp.data());
    fail(Stage::exec);
  }

  pid_ = pid;
  // Also here, so that the group exists when the constructor returns whichever runs first.
  ::setpgid(pid, pid);
  err_w.reset();
  in_fd.reset();
  child_fd[0].reset();
  child_fd[1].reset();

  ChildFailure failure{};
  ssize_t got;
  do {
    got = ::read(err_r.fd, &failure, sizeof failure);
  } while (got < 0 && errno == EINTR);
  if (got > 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = to_exit_status(status);
    std::string why = got == static_cast<ssize_t>(sizeof failure)
                          ? std::string(stage_text(failure.stage)) + ": " + errno_text(failure.err)
                          : "it failed before exec";
    throw std::runtime_error("ChildProcess: cannot start " + program + ": " + why);
  }

  bool any_pipe = false;
  for (int i = 0; i < 2; ++i) {
    if (read_fd[i].fd >= 0) {
      captured_[i].fd = read_fd[i].release();
      captured_[i].eof = false;
      any_pipe = true;
    }
  }
  if (any_pipe) reader_ = std::thread([this] { reader_loop(); });
}

ChildProcess::Result ChildProcess::run(std::vector<std::string> argv,
                                       std::map<std::string, std::string> env,
                                       std::optional<std::string> stdin_text,
                                       std::chrono::milliseconds timeout) {
  Options o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  o.stdin_text = std::move(stdin_text);
  ChildProcess child(std::move(o));
  Result r;
  auto st = child.wait_for(timeout);
  if (!st) {
    r.timed_out = true;
    st = child.kill();
  }
  r.status = *st;
  r.out = child.stdout_text();
  r.err = child.stderr_text();
  return r;
}

bool ChildProcess::poll_exit_locked() {
  if (status_) return true;
  siginfo_t info{};
  // WNOWAIT: the zombie keeps its pid, so its process group id cannot be reused while we
  // kill what is left in the group.
  if (::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR) return false;
    status_ = ExitStatus{};  // not our child any more (reaped elsewhere)
    return true;
  }
  if (info.si_pid == 0) return false;  // still running
  ::kill(-pid_, SIGKILL);              // anything it left running in its group
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  status_ = to_exit_status(status);
  return true;
}

bool ChildProcess::running() {
  std::lock_guard lock(status_mu_);
  return !poll_exit_locked();
}

std::optional<ExitStatus> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto nap = std::chrono::milliseconds(1);
  for (;;) {
    {
      std::lock_guard lock(status_mu_);
      if (poll_exit_locked()) break;
    }
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::min<Clock::duration>(nap, deadline - now));
    nap = std::min(nap * 2, std::chrono::milliseconds(20));
  }
  finish_reader();
  std::lock_guard lock(status_mu_);
  return status_;
}

ExitStatus ChildProcess::wait() {
  for (;;) {
    if (auto st = wait_for(std::chrono::hours(1))) return *st;
  }
}

void ChildProcess::signal(int sig) {
  std::lock_guard lock(status_mu_);
  if (!status_) ::kill(pid_, sig);
}

void ChildProcess::signal_group(int sig) {
  std::lock_guard lock(status_mu_);
  if (!status_) ::kill(-pid_, sig);
}

ExitStatus ChildProcess::terminate() {
  signal_group(SIGTERM);
  if (auto st = wait_for(options_.kill_grace)) return *st;
  return kill();
}

ExitStatus ChildProcess::kill() {
  {
    std::lock_guard lock(status_mu_);
    if (!poll_exit_locked()) {
      ::kill(-pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      status_ = to_exit_status(status);
    }
  }
  finish_reader();
  std::lock_guard lock(status_mu_);
  return *status_;
}

void ChildProcess::reader_loop() {
  std::ofstream copy[2];
  for (int i = 0; i < 2; ++i) {
    const Output& o = i == 0 ? options_.out : options_.err;
    if (captured_[i].fd >= 0 && !o.path.empty()) {
      copy[i].open(o.path, std::ios::app | std::ios::binary);
    }
  }
  int fds[2] = {captured_[0].fd, captured_[1].fd};  // this thread owns them from here
  auto close_stream = [&](int i) {
    ::close(fds[i]);
    fds[i] = -1;
    std::lock_guard lock(out_mu_);
    captured_[i].fd = -1;
    captured_[i].eof = true;
    out_cv_.notify_all();
  };
  int drain_rounds = 0;
  char buf[8192];
  while (fds[0] >= 0 || fds[1] >= 0) {
    const bool stopping = stop_reader_.load();
    // After the child is gone, read what is buffered but do not wait for writers that
    // escaped its process group (bounded, in case one keeps writing).
    if (stopping && ++drain_rounds > 1000) break;
    pollfd pfd[2];
    int index[2];
    nfds_t n = 0;
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0) continue;
      pfd[n] = {fds[i], POLLIN, 0};
      index[n++] = i;
    }
    int ready = ::poll(pfd, n, stopping ? 0 : 50);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      if (stopping) break;
      continue;
    }
    for (nfds_t k = 0; k < n; ++k) {
      if (pfd[k].revents == 0) continue;
      const int i = index[k];
      ssize_t got = ::read(fds[i], buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        close_stream(i);
        continue;
      }
      if (copy[i].is_open()) {
        copy[i].write(buf, got);
        copy[i].flush();
      }
      std::lock_guard lock(out_mu_);
      captured_[i].text.append(buf, static_cast<std::size_t>(got));
      out_cv_.notify_all();
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i] >= 0) close_stream(i);
  }
}

void ChildProcess::finish_reader() {
  std::call_once(reader_finished_, [this] {
    if (!reader_.joinable()) return;
    {
      // The child is reaped and its group killed: EOF normally follows at once.
      std::unique_lock lock(out_mu_);
      out_cv_.wait_for(lock, std::chrono::seconds(2),
                       [this] { return captured_[0].eof && captured_[1].eof; });
    }
    stop_reader_ = true;
    reader_.join();
  });
}

std::string ChildProcess::text_of(Stream stream) const {
  const Output& o = output_of(stream);
  switch (o.kind) {
    case Output::Kind::pipe: {
      std::lock_guard lock(out_mu_);
      return captured_[stream == Stream::out ? 0 : 1].text;
    }
    case Output::Kind::file:
      return read_whole_file(o.path);
    default:
      return {};
  }
}

std::string ChildProcess::stdout_text() const { return text_of(Stream::out); }
std::string ChildProcess::stderr_text() const { return text_of(Stream::err); }

std::optional<std::string> ChildProcess::wait_for_text(
    Stream stream, const std::function<std::optional<std::string>(const std::string&)>& check,
    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const Output& o = output_of(stream);
  if (o.kind == Output::Kind::pipe) {
    Captured& c = captured_[stream == Stream::out ? 0 : 1];
    std::unique_lock lock(out_mu_);
    for (;;) {
      if (auto found = check(c.text)) return found;
      if (c.eof || Clock::now() >= deadline) return std::nullopt;
      out_cv_.wait_until(lock, deadline);
    }
  }
  if (o.kind != Output::Kind::file) {
    throw std::logic_error("ChildProcess: waiting for output that is not captured");
  }
  for (;;) {
    const bool exited = !running();  // before reading: after it, the file is complete
    if (auto found = check(read_whole_file(o.path))) return found;
    if (exited || Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::optional<std::string> ChildProcess::wait_for_line(
    Stream stream, const std::function<bool(std::string_view)>& match,
    std::chrono::milliseconds timeout) {
  return wait_for_text(
      stream,
      [&](const std::string& text) -> std::optional<std::string> {
        std::size_t start = 0;
        std::size_t nl;
        while ((nl = text.find('\n', start)) != std::string::npos) {
          std::string_view line(text.data() + start, nl - start);
          if (match(line)) return std::string(line);
          start = nl + 1;
        }
        return std::nullopt;
      },
      timeout);
}

bool ChildProcess::wait_for_output(Stream stream, std::string_view text,
                                   std::chrono::milliseconds timeout) {
  return wait_for_text(
             stream,
             [&](const std::string& all) -> std::optional<std::string> {
               if (all.find(text) == std::string::npos) return std::nullopt;
               return std::string();
             },
             timeout)
      .has_value();
}

}  // namespace parley::test
