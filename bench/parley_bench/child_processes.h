// Forked children of one parley-bench run, for scenarios larger than one process's
// descriptor limit: each child's stdout comes back to the parent through a pipe, and each
// child waits, when told to, until the parent closes its "go" pipe (so that the parent can
// measure while every child holds its connections).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::bench {

struct ChildResult {
  int exit_code = -1;  // -1: killed or not collected
  std::string output;  // everything it wrote to stdout
};

class ChildSet {
 public:
  ChildSet() = default;
  ChildSet(const ChildSet&) = delete;
  ChildSet& operator=(const ChildSet&) = delete;
  ~ChildSet();  // kills children still running

  // Forks `n` children before this process starts any thread; child k runs body(k, go_fd)
  // with stdout on its pipe and exits with its return value. False if a pipe or fork failed
  // (the children already forked are killed).
  bool spawn(unsigned n, const std::function<int(unsigned k, int go_fd)>& body);
  // Reads until every child has written the line `marker` or ended, or `deadline_ns`
  // passes; returns how many wrote it.
  size_t wait_for_line(std::string_view marker, uint64_t deadline_ns);
  // Closes the go pipes: every child waiting in released() goes on.
  void release();
  // Reads every child's output to its end and waits for its exit (killing those still
  // running at `deadline_ns`).
  std::vector<ChildResult> collect(uint64_t deadline_ns);

 private:
  struct Child {
    pid_t pid = -1;
    int out_fd = -1;  // read end of its stdout
    int go_fd = -1;   // write end of its go pipe
    std::string output;
    size_t scanned = 0;  // output before this is searched for the marker already
    bool marked = false;
    bool eof = false;
  };
  // One poll over the open stdout pipes, at most until `deadline_ns`; false when none is
  // open or the deadline passed.
  bool read_some(uint64_t deadline_ns);
  std::vector<Child> children_;
};

// In a child: true once the parent has released it (its go pipe closed).
bool released(int go_fd);

}  // namespace parley::bench
