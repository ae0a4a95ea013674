// The one way tests start other programs (parleyd, the `parley` CLI, node servers, npm):
// argv and environment, captured output, a timeout on every wait, and no child left behind.
//
// Each child runs in its own process group, so signals from terminate()/kill() and the
// destructor also reach what it started (node's workers, a shell's commands). It gets
// PR_SET_PDEATHSIG=SIGKILL, so a test binary that crashes or is killed by the CTest timeout
// takes its children with it. That is why this forks instead of using posix_spawn (which
// cannot set it); the child runs only async-signal-safe calls between fork and exec.
// PDEATHSIG fires when the *thread* that started the child ends: start long-lived children
// from the test's main thread (SetUp, SetUpTestSuite, a test body), not from a helper thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace parley::test {

// Exit status of a reaped process: `code` if it exited, `signal` if a signal ended it.
struct ExitStatus {
  bool exited = false;
  int code = -1;
  int signal = 0;
  bool ok() const { return exited && code == 0; }
  // The shell's convention: the exit code, or 128 + the signal.
  int shell_code() const { return exited ? code : 128 + signal; }
  std::string describe() const;
};

class ChildProcess {
 public:
  enum class Stream { out, err };

  // Where the child's stdout or stderr goes.
  struct Output {
    enum class Kind { pipe, file, inherit, null };
    Kind kind = Kind::pipe;
    // file: the file (created; appended to if `append`). pipe: when set, every chunk is
    // also appended here (a log that stays in a kept temp dir).
    std::filesystem::path path;
    bool append = false;

    // Captured in memory by a reader thread (so the child never blocks on a full pipe).
    static Output pipe(std::filesystem::path copy_to = {}) {
      return {Kind::pipe, std::move(copy_to), true};
    }
    static Output file(std::filesystem::path p, bool append = false) {
      return {Kind::file, std::move(p), append};
    }
    static Output inherit() { return {Kind::inherit, {}, false}; }  // the test's own fd
    static Output null() { return {Kind::null, {}, false}; }        // /dev/null
  };

  struct Options {
    // argv[0] is a path, or a name looked up on the child's PATH.
    std::vector<std::string> argv{};
    // Set in the child's environment, over the test's own (or alone: inherit_env = false).
    std::map<std::string, std::string> env{};
    bool inherit_env = true;
    std::filesystem::path cwd{};              // empty: the test's working directory
    std::optional<std::string> stdin_text{};  // nullopt: /dev/null
    Output out = Output::pipe();
    Output err = Output::pipe();
    // terminate() and the destructor: SIGTERM, then SIGKILL after this long.
    std::chrono::milliseconds kill_grace = std::chrono::seconds(5);
  };

  struct Result {
    ExitStatus status;
    std::string out;
    std::string err;
    bool timed_out = false;  // killed after `timeout`
    int code() const { return status.shell_code(); }
  };

  // Starts the program; throws std::runtime_error saying why when it cannot (not found, not
  // executable, a bad cwd or output file).
  explicit ChildProcess(Options options);
  // terminate() when still running, then the reader thread ends.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Runs argv to completion with stdout and stderr captured; after `timeout` the child is
  // killed (Result::timed_out). Throws like the constructor.
  static Result run(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                    std::optional<std::string> stdin_text = std::nullopt,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

  pid_t pid() const { return pid_; }
  const std::vector<std::string>& argv() const { return options_.argv; }

  // True until the child has exited (reaps it when it has).
  bool running();
  // The exit status once the child has exited, or nullopt after `timeout` (still running).
  // When it returns a status, captured output is complete.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  ExitStatus wait();  // no timeout: for children that end by themselves

  // `sig` to the child alone / to its whole process group (no-op once reaped).
  void signal(int sig);
  void signal_group(int sig);
  // SIGTERM to the group, up to kill_grace for it to exit, then SIGKILL; reaps.
  ExitStatus terminate();
  // SIGKILL to the group; reaps.
  ExitStatus kill();

  // What the child wrote so far (pipe: captured; file: the file's content; else "").
  std::string stdout_text() const;
  std::string stderr_text() const;
  // Waits for a complete line of `stream` for which `match` is true and returns it; nullopt
  // after `timeout`, or as soon as the stream can have no more (closed, or the child exited).
  std::optional<std::string> wait_for_line(Stream stream,
                                           const std::function<bool(std::string_view)>& match,
                                           std::chrono::milliseconds timeout);
  // Waits until `stream` contains `text`; false like wait_for_line.
  bool wait_for_output(Stream stream, std::string_view text, std::chrono::milliseconds timeout);

 private:
  struct Captured {
    int fd = -1;  // read end while open
    std::string text;
    bool eof = true;
  };

  void start();
  // Detects exit without reaping; when it has, kills what is left of the group and reaps.
  // Caller holds status_mu_.
  bool poll_exit_locked();
  void reader_loop();
  // Once the child is reaped: lets the reader take what is left in the pipes and joins it.
  void finish_reader();
  // Waits until `check` of the stream's text so far returns a value (see wait_for_line).
  std::optional<std::string> wait_for_text(
      Stream stream, const std::function<std::optional<std::string>(const std::string&)>& check,
      std::chrono::milliseconds timeout);
  std::string text_of(Stream stream) const;
  const Output& output_of(Stream stream) const {
    return stream == Stream::out ? options_.out : options_.err;
  }

  Options options_;
  pid_t pid_ = -1;
  std::mutex status_mu_;
  std::optional<ExitStatus> status_;

  // Pipe capture: one reader thread for both streams.
  mutable std::mutex out_mu_;
  std::condition_variable out_cv_;
  Captured captured_[2];
  std::atomic<bool> stop_reader_{false};
  std::once_flag reader_finished_;
  std::thread reader_;
};

}  // namespace parley::test
