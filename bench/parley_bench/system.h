// Process-level helpers: descriptor limit, another process's memory, terminal detection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace parley::bench {

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the soft limit now in force.
uint64_t raise_nofile_limit();

// VmRSS of process `pid` in KiB, from /proc/PID/status; nullopt if it cannot be read.
std::optional<uint64_t> rss_kib(int pid);

// CPU time (user + system) of process `pid` in seconds, from /proc/PID/stat; nullopt if it
// cannot be read.
std::optional<double> cpu_seconds(int pid);

bool stderr_is_tty();

// Nanoseconds on the one steady clock that every timestamp in a run comes from.
uint64_t now_ns();

}  // namespace parley::bench
