// Micro-benchmarks of the pieces on the message path: reading WebSocket frames, parsing a
// send frame, encoding a push, parley-bench's histogram, and RocksStore::append_message
// per durability mode.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>

#include "common/config.h"
#include "histogram.h"
#include "net/ws_frame.h"
#include "net/ws_test_frames.h"
#include "proto/frames.h"
#include "store/rocksdb/rocks_store.h"

namespace {

using namespace parley;

void BM_ParseSend(benchmark::State& state) {
  std::string frame =
      R"({"type":"send","id":12345,"to":"bob","client_msg_id":"c-1700000000-1","body":")" +
      std::string(static_cast<size_t>(state.range(0)), 'x') + "\"}";
  proto::ParseLimits limits;
  for (auto _ : state) benchmark::DoNotOptimize(proto::parse_request(frame, limits));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame.size()));
}
BENCHMARK(BM_ParseSend)->Arg(64)->Arg(1024);

// A 64 KiB read of masked client frames of range(0) bytes each, unmasked, checked (UTF-8)
// and handed over as whole messages: what one read costs the server's I/O thread.
void BM_WsReadFrames(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const std::string payload(size, 'x');
  const std::string frame = net::ws::client_frame(net::ws::kText, payload);
  std::string wire;
  while (wire.size() + frame.size() <= 64 * 1024) wire += frame;
  struct Count final : net::ws::FrameReader::Events {
    size_t messages = 0;
    bool on_message(std::string_view, bool) override { return ++messages > 0; }
    void on_ping(std::string_view) override {}
    void on_close_frame(uint16_t, std::string_view) override {}
  } events;
  net::ws::FrameReader reader(64 * 1024);
  std::string chunk;
  for (auto _ : state) {
    chunk = wire;  // unmasked in place: a fresh copy each time, as a read would be
    benchmark::DoNotOptimize(reader.feed(chunk.data(), chunk.size(), events));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
  state.counters["messages"] =
      benchmark::Counter(static_cast<double>(events.messages), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WsReadFrames)->Arg(100)->Arg(4096);

void BM_MessagePush(benchmark::State& state) {
  store::Message m;
  m.chat_id = 12;
  m.seq = 5;
  m.message_id = 7313459286409216001ull;
  m.ts = 1732771200123;
  m.sender = "alice";
  m.to = "bob";
  m.body = std::string(64, 'x');
  m.client_msg_id = "c-1700000000-1";
  for (auto _ : state) {
    std::string msg = proto::message_json(m);
    benchmark::DoNotOptimize(proto::message_push(43, msg));
  }
}
BENCHMARK(BM_MessagePush);

void BM_HistogramRecord(benchmark::State& state) {
  bench::Histogram h;
  uint64_t v = 12345;
  for (auto _ : state) {
    h.record(v);
    v = v * 6364136223846793005ull + 1442695040888963407ull;
    v >>= 40;
  }
  benchmark::DoNotOptimize(h.percentile(99));
}
BENCHMARK(BM_HistogramRecord);

// Appends `range(1)` messages per iteration with all of them in flight, as a loaded server
// does; range(0) is the durability (0 none, 1 flush, 2 fsync).
void BM_StoreAppend(benchmark::State& state) {
  auto dir = std::filesystem::temp_directory_path() /
             ("parley_micro_" + std::to_string(::getpid()) + "_" + std::to_string(state.range(0)));
  std::filesystem::remove_all(dir);
  StoreConfig sc;
  sc.durability = state.range(0) == 0   ? Durability::none
                  : state.range(0) == 1 ? Durability::flush
                                        : Durability::fsync;
  auto opened = store::rocks::RocksStore::open(dir.string(), sc, SyncConfig{});
  if (!opened) {
    state.SkipWithError("cannot open RocksDB");
    return;
  }
  auto& st = *opened.value();
  std::mutex mu;
  std::condition_variable cv;
  int pending = 2;
  for (const char* u : {"alice", "bob"})
    st.ensure_user(u, [&](Result<Unit>) {
      std::lock_guard lock(mu);
      --pending;
      cv.notify_one();
    });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return pending == 0; });
  }
  uint64_t n = 0;
  const auto batch = static_cast<int>(state.range(1));
  for (auto _ : state) {
    std::atomic<int> left{batch};
    for (int i = 0; i < batch; ++i) {
      store::AppendRequest req;
      req.sender = "alice";
      req.to_user = "bob";
      req.body = std::string(64, 'x');
      req.client_msg_id = std::to_string(++n);
      req.ts = 1732771200123;
      req.message_id = n;
      st.append_message(std::move(req), [&](Result<store::AppendResult>) {
        if (--left == 0) {
          std::lock_guard lock(mu);
          cv.notify_one();
        }
      });
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return left.load() == 0; });
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * batch);
  st.close();
  opened.value().reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StoreAppend)
    ->Args({0, 1024})
    ->Args({1, 1024})
    ->Args({2, 1024})
    ->Args({2, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
