#include "child_processes.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <thread>

#include "system.h"

namespace parley::bench {

namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

ChildSet::~ChildSet() {
  for (auto& c : children_) {
    close_fd(c.out_fd);
    close_fd(c.go_fd);
    if (c.pid > 0) {
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, nullptr, 0);
    }
  }
}

bool ChildSet::spawn(unsigned n, const std::function<int(unsigned, int)>& body) {
  std::fflush(stdout);
  std::fflush(stderr);
  for (unsigned k = 0; k < n; ++k) {
    int out[2], go[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return false;
    if (::pipe2(go, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return false;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      for (int fd : {out[0], out[1], go[0], go[1]}) ::close(fd);
      return false;
    }
    if (pid == 0) {
      // The child keeps its own ends only: the parent's other pipes would otherwise keep
      // a sibling's go pipe open after release().
      for (auto& c : children_) {
        close_fd(c.out_fd);
        close_fd(c.go_fd);
        c.pid = -1;
      }
      ::close(out[0]);
      ::close(go[1]);
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[1]);
      int rc = body(k, go[0]);
      std::fflush(stdout);
      std::fflush(stderr);
      ::_exit(rc);
    }
    ::close(out[1]);
    ::close(go[0]);
    children_.push_back(Child{pid, out[0], go[1], {}, 0, false, false});
  }
  return true;
}

bool ChildSet::read_some(uint64_t deadline_ns) {
  std::vector<pollfd> fds;
  std::vector<Child*> who;
  for (auto& c : children_)
    if (!c.eof) {
      fds.push_back(pollfd{c.out_fd, POLLIN, 0});
      who.push_back(&c);
    }
  uint64_t now = now_ns();
  if (fds.empty() || now >= deadline_ns) return false;
  int timeout_ms = static_cast<int>(std::min<uint64_t>((deadline_ns - now) / 1'000'000 + 1, 200));
  int n = ::poll(fds.data(), fds.size(), timeout_ms);
  if (n < 0 && errno != EINTR) return false;
  char buf[4096];
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
    if (got > 0) {
      who[i]->output.append(buf, static_cast<size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      who[i]->eof = true;
      close_fd(who[i]->out_fd);
    }
  }
  return true;
}

size_t ChildSet::wait_for_line(std::string_view marker, uint64_t deadline_ns) {
  auto count = [&] {
    size_t marked = 0, waiting = 0;
    for (auto& c : children_) {
      // Whole lines only; `scanned` keeps each search to what arrived since.
      size_t pos;
      while (!c.marked && (pos = c.output.find('\n', c.scanned)) != std::string::npos) {
        c.marked = std::string_view(c.output).substr(c.scanned, pos - c.scanned) == marker;
        c.scanned = pos + 1;
      }
      if (c.marked)
        ++marked;
      else if (!c.eof)
        ++waiting;
    }
    return std::pair{marked, waiting};
  };
  while (true) {
    auto [marked, waiting] = count();
    if (waiting == 0 || !read_some(deadline_ns)) return marked;
  }
}

void ChildSet::release() {
  for (auto& c : children_) close_fd(c.go_fd);
}

std::vector<ChildResult> ChildSet::collect(uint64_t deadline_ns) {
  release();
  while (read_some(deadline_ns)) {
  }
  std::vector<ChildResult> results;
  for (auto& c : children_) {
    ChildResult r;
    r.output = std::move(c.output);
    if (c.pid > 0) {
      int status = 0;
      // The output ended (or the deadline passed): give it a moment to exit, then kill it.
      pid_t done = 0;
      for (int i = 0; i < 100 && (done = ::waitpid(c.pid, &status, WNOHANG)) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (done == 0) {
        ::kill(c.pid, SIGKILL);
        done = ::waitpid(c.pid, &status, 0);
      }
      if (done == c.pid && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
      c.pid = -1;
    }
    close_fd(c.out_fd);
    results.push_back(std::move(r));
  }
  return results;
}

bool released(int go_fd) {
  pollfd p{go_fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

}  // namespace parley::bench
