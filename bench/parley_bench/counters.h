// Per-thread counters and latency histograms: one writer (the worker thread), read by the
// progress line at any time and summed once the run is over.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "histogram.h"
#include "options.h"

namespace parley::bench {

// A counter with a single writer: a plain load and store, no locked instruction.
class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

struct Counters {
  // connections
  Counter connected;  // authenticated
  Counter failed;     // could not connect, upgrade or authenticate
  Counter dropped;    // closed by the server or the network after authenticating
  Counter heartbeats;
  Counter heartbeat_errors;
  std::array<Counter, kMaxNodes> connected_by_node;  // authenticated, per --url
  // messages
  Counter sent;
  Counter acked;
  Counter send_errors;  // an error frame answered a send
  Counter delivered;    // distinct messages a receiver got
  Counter duplicated;
  Counter reordered;
  Counter pts_gaps;  // pushes whose pts skipped ahead of the device's cursor
  Counter bad_frames;
  Histogram ack_ns;  // send -> ack
  Histogram e2e_ns;  // send -> delivery at the receiver (or, in sync, per-device catch-up)
};

// Sums `from` into plain numbers (racy but monotone when read during a run).
struct Totals {
  uint64_t connected = 0, failed = 0, dropped = 0, heartbeats = 0, heartbeat_errors = 0;
  uint64_t sent = 0, acked = 0, send_errors = 0, delivered = 0, duplicated = 0, reordered = 0,
           pts_gaps = 0, bad_frames = 0;
  std::array<uint64_t, kMaxNodes> connected_by_node{};
  void add(const Counters& c) {
    for (size_t i = 0; i < kMaxNodes; ++i) connected_by_node[i] += c.connected_by_node[i].get();
    connected += c.connected.get();
    failed += c.failed.get();
    dropped += c.dropped.get();
    heartbeats += c.heartbeats.get();
    heartbeat_errors += c.heartbeat_errors.get();
    sent += c.sent.get();
    acked += c.acked.get();
    send_errors += c.send_errors.get();
    delivered += c.delivered.get();
    duplicated += c.duplicated.get();
    reordered += c.reordered.get();
    pts_gaps += c.pts_gaps.get();
    bad_frames += c.bad_frames.get();
  }
};

}  // namespace parley::bench
