// The MediaStore conformance suite: the contract of media/media_store.h as tests. Every
// backend instantiates it once with a factory (INSTANTIATE_TEST_SUITE_P), against real
// storage: a temporary directory, or a real S3-compatible server.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "media/media_store.h"
#include "media/sha256.h"

namespace parley::media {

// Makes a fresh, empty store for one test, and reopens it on the same data (a restart).
class MediaStoreFactory {
 public:
  virtual ~MediaStoreFactory() = default;
  // Non-empty: the backend cannot run here (a missing tool), and the test is skipped.
  virtual std::string skip_reason() { return {}; }
  virtual std::unique_ptr<MediaStore> create(const std::string& test_name) = 0;
  virtual std::unique_ptr<MediaStore> reopen() = 0;
  // The local directory the store spools uploads in: empty whenever no upload is open.
  virtual std::string spool_dir() = 0;
  virtual void destroy() = 0;
};
using MediaStoreFactoryMaker = std::function<std::shared_ptr<MediaStoreFactory>()>;

class MediaStoreConformance : public ::testing::TestWithParam<MediaStoreFactoryMaker> {
 protected:
  void SetUp() override {
    factory_ = GetParam()();
    if (auto reason = factory_->skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
    if (HasFailure()) FAIL() << "the backend did not start";
    store_ = factory_->create(::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(store_);
  }
  void TearDown() override {
    store_.reset();
    if (factory_) factory_->destroy();
  }

  static std::string random_bytes(size_t n, uint32_t seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(gen() & 0xff);
    return s;
  }

  // Uploads `data` in chunks of `chunk` bytes and commits.
  Result<ObjectInfo> put(const std::string& data, size_t chunk = 64 * 1024,
                         uint64_t max_bytes = uint64_t{1} << 30) {
    auto up = store_->begin(max_bytes);
    if (!up) return up.error();
    for (size_t pos = 0; pos < data.size(); pos += chunk) {
      auto st = up.value()->write(std::string_view(data).substr(pos, chunk));
      if (!st) return st.error();
    }
    return up.value()->commit();
  }

  // Reads [offset, offset + length) in reads of `step` bytes.
  Result<std::string> get(const std::string& id, uint64_t offset = 0,
                          uint64_t length = std::numeric_limits<uint64_t>::max(),
                          size_t step = 7 * 1024 + 3) {
    auto r = store_->open(id, offset, length);
    if (!r) return r.error();
    std::string out;
    std::vector<char> buf(step);
    for (;;) {
      auto n = r.value()->read(buf.data(), buf.size());
      if (!n) return n.error();
      if (n.value() == 0) break;
      out.append(buf.data(), n.value());
    }
    EXPECT_EQ(out.size(), r.value()->length());
    return out;
  }

  size_t spool_files() {
    std::error_code ec;
    auto it = std::filesystem::directory_iterator(factory_->spool_dir(), ec);
    if (ec) return 0;
    return static_cast<size_t>(std::distance(it, std::filesystem::directory_iterator()));
  }

  std::vector<std::string> all_ids() {
    std::vector<std::string> ids;
    auto r = store_->list({}, 100000);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r) {
      for (const auto& o : r.value()) ids.push_back(o.id);
    }
    return ids;
  }

  std::shared_ptr<MediaStoreFactory> factory_;
  std::unique_ptr<MediaStore> store_;
};

TEST_P(MediaStoreConformance, RoundTripOfAMultiMiBObjectInChunks) {
  const std::string data = random_bytes(5 * 1024 * 1024 + 123, 1);
  auto up = store_->begin(8 * 1024 * 1024);
  ASSERT_TRUE(up.ok()) << up.error().message;
  // Uneven chunks, the last one short.
  for (size_t pos = 0; pos < data.size(); pos += 100 * 1000 + 1) {
    ASSERT_TRUE(up.value()->write(std::string_view(data).substr(pos, 100 * 1000 + 1)).ok());
  }
  EXPECT_EQ(up.value()->size(), data.size());
  EXPECT_EQ(up.value()->sha256_hex(), sha256_hex(data));
  auto info = up.value()->commit();
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->id, sha256_hex(data));
  EXPECT_EQ(info->size, data.size());

  auto st = store_->stat(info->id);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->id, info->id);
  EXPECT_EQ(st->size, data.size());
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_LE(std::abs(st->modified - now), 3600);

  auto back = get(info->id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back.value() == data) << "content differs";
  EXPECT_EQ(spool_files(), 0u);
}

TEST_P(MediaStoreConformance, IdIsTheSha256OfTheContent) {
  auto abc = put("abc");
  ASSERT_TRUE(abc.ok()) << abc.error().message;
  EXPECT_EQ(abc->id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(abc->size, 3u);

  auto empty = put("");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_EQ(empty->id, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(empty->size, 0u);
  auto back = get(empty->id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value(), "");
}

TEST_P(MediaStoreConformance, SpoolPathHoldsTheBytesBeforeCommit) {
  auto up = store_->begin(1024);
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(up.value()->write("\x89PNG\r\n").ok());
  ASSERT_TRUE(up.value()->write("rest").ok());
  std::ifstream f(up.value()->spool_path(), std::ios::binary);
  std::string seen((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(seen, "\x89PNG\r\nrest");
  // Nothing is visible before commit.
  EXPECT_EQ(store_->stat(up.value()->sha256_hex()).error().code, Errc::not_found);
  EXPECT_TRUE(all_ids().empty());
  const std::string spool = up.value()->spool_path();
  ASSERT_TRUE(up.value()->commit().ok());
  EXPECT_FALSE(std::filesystem::exists(spool));
}

TEST_P(MediaStoreConformance, SameContentIsStoredOnce) {
  const std::string data = random_bytes(300 * 1000, 2);
  auto a = put(data, 4096);
  auto b = put(data, 50000);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(b->size, data.size());
  EXPECT_EQ(all_ids(), std::vector<std::string>{a->id});
  auto back = get(a->id);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back.value() == data);
  EXPECT_EQ(spool_files(), 0u);
}

TEST_P(MediaStoreConformance, ConcurrentUploadsOfTheSameContent) {
  const std::string data = random_bytes(256 * 1024 + 5, 3);
  constexpr int kThreads = 6;
  std::vector<Result<ObjectInfo>> results(kThreads, Error{Errc::internal, "not run"});
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto up = store_->begin(1 << 20);
      if (!up) {
        results[i] = up.error();
        return;
      }
      for (size_t pos = 0; pos < data.size(); pos += 8192) {
        if (auto st = up.value()->write(std::string_view(data).substr(pos, 8192)); !st) {
          results[i] = st.error();
          return;
        }
      }
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();  // commit together
      results[i] = up.value()->commit();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->id, sha256_hex(data));
    EXPECT_EQ(r->size, data.size());
  }
  EXPECT_EQ(all_ids(), std::vector<std::string>{sha256_hex(data)});
  auto back = get(sha256_hex(data));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back.value() == data);
  EXPECT_EQ(spool_files(), 0u);
}

TEST_P(MediaStoreConformance, RangesAreClippedToTheObject) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>('a' + i % 26));
  auto info = put(data, 333);
  ASSERT_TRUE(info.ok()) << info.error().message;
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  struct Case {
    uint64_t offset, length;
    std::string want;
  };
  const std::vector<Case> cases = {{0, 10, data.substr(0, 10)},
                                   {10, 20, data.substr(10, 20)},
                                   {990, 100, data.substr(990)},
                                   {999, 1, data.substr(999)},
                                   {0, kMax, data},
                                   {0, 1000, data},
                                   {1, 999, data.substr(1)},
                                   {500, 0, ""},
                                   {1000, 5, ""},
                                   {1000, 0, ""},
                                   {0, 1, data.substr(0, 1)},
                                   {123, kMax, data.substr(123)},
                                   {998, kMax - 5, data.substr(998)}};
  for (const auto& c : cases) {
    auto r = store_->open(info->id, c.offset, c.length);
    ASSERT_TRUE(r.ok()) << c.offset << "+" << c.length << ": " << r.error().message;
    EXPECT_EQ(r.value()->length(), c.want.size()) << c.offset << "+" << c.length;
    EXPECT_EQ(r.value()->object_size(), 1000u);
    auto got = get(info->id, c.offset, c.length, 64);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got.value(), c.want) << c.offset << "+" << c.length;
  }
  for (uint64_t offset : {uint64_t{1001}, uint64_t{5000}, kMax}) {
    auto r = store_->open(info->id, offset, 1);
    ASSERT_FALSE(r.ok()) << offset;
    EXPECT_EQ(r.error().code, Errc::bad_request) << offset;
  }
  // The empty object: only offset 0.
  auto empty = put("");
  ASSERT_TRUE(empty.ok());
  auto r = store_->open(empty->id, 0, kMax);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value()->length(), 0u);
  EXPECT_EQ(r.value()->object_size(), 0u);
  EXPECT_EQ(store_->open(empty->id, 1, 1).error().code, Errc::bad_request);
}

TEST_P(MediaStoreConformance, ReadsInAnyStepSize) {
  const std::string data = random_bytes(700 * 1000, 4);
  auto info = put(data);
  ASSERT_TRUE(info.ok());
  for (size_t step : {size_t{1} << 20, size_t{1000}}) {
    auto got = get(info->id, 12345, 600 * 1000, step);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_TRUE(got.value() == data.substr(12345, 600 * 1000)) << step;
  }
  // A reader dropped midway is fine.
  auto r = store_->open(info->id, 0, data.size());
  ASSERT_TRUE(r.ok());
  char buf[100];
  auto n = r.value()->read(buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_GT(n.value(), 0u);
  EXPECT_EQ(std::string(buf, n.value()), data.substr(0, n.value()));
  r.value().reset();
}

TEST_P(MediaStoreConformance, OversizedUploadIsRefusedAndLeavesNothing) {
  auto up = store_->begin(1000);
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(up.value()->write(std::string(600, 'x')).ok());
  auto st = up.value()->write(std::string(401, 'x'));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::too_large);
  EXPECT_EQ(spool_files(), 0u) << "the spool goes at once";
  EXPECT_FALSE(up.value()->write("x").ok());
  EXPECT_FALSE(up.value()->commit().ok());
  EXPECT_TRUE(all_ids().empty());
  EXPECT_EQ(store_->stat(sha256_hex(std::string(600, 'x'))).error().code, Errc::not_found);

  // Exactly max_bytes is fine.
  auto exact = put(std::string(1000, 'y'), 100, 1000);
  ASSERT_TRUE(exact.ok()) << exact.error().message;
  EXPECT_EQ(exact->size, 1000u);
  // A single chunk past the limit, and a limit of zero.
  auto big = put(std::string(1001, 'z'), 2000, 1000);
  EXPECT_EQ(big.error().code, Errc::too_large);
  EXPECT_EQ(put("a", 1, 0).error().code, Errc::too_large);
  EXPECT_TRUE(put("", 1, 0).ok());
  EXPECT_EQ(all_ids().size(), 2u);
  EXPECT_EQ(spool_files(), 0u);
}

TEST_P(MediaStoreConformance, AbortAndDestructionLeaveNothing) {
  {
    auto up = store_->begin(1 << 20);
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE(up.value()->write(random_bytes(100000, 5)).ok());
    EXPECT_TRUE(std::filesystem::exists(up.value()->spool_path()));
    EXPECT_EQ(spool_files(), 1u);
    up.value()->abort();
    EXPECT_EQ(spool_files(), 0u);
    up.value()->abort();  // idempotent
    EXPECT_FALSE(up.value()->write("more").ok());
    EXPECT_FALSE(up.value()->commit().ok());
  }
  {
    auto up = store_->begin(1 << 20);
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE(up.value()->write(random_bytes(100000, 6)).ok());
    EXPECT_EQ(spool_files(), 1u);
  }  // destroyed uncommitted
  EXPECT_EQ(spool_files(), 0u);
  EXPECT_TRUE(all_ids().empty());

  // After commit the upload is finished.
  auto up = store_->begin(100);
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(up.value()->write("once").ok());
  ASSERT_TRUE(up.value()->commit().ok());
  EXPECT_FALSE(up.value()->write("twice").ok());
  EXPECT_FALSE(up.value()->commit().ok());
  up.value()->abort();  // does not undo the commit
  EXPECT_TRUE(store_->stat(sha256_hex("once")).ok());
}

TEST_P(MediaStoreConformance, BadIdsAreRefused) {
  const std::string good = sha256_hex("x");
  std::string upper = good;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  const std::vector<std::string> bad = {"",
                                        "../../../../etc/passwd",
                                        upper,
                                        good.substr(1),
                                        good + "0",
                                        std::string(64, 'g'),
                                        good.substr(0, 30) + "/" + good.substr(31),
                                        good.substr(0, 30) + ".." + good.substr(32),
                                        std::string(63, '0') + '\0',
                                        " " + good.substr(1)};
  for (const auto& id : bad) {
    EXPECT_EQ(store_->stat(id).error().code, Errc::bad_request) << id;
    EXPECT_EQ(store_->open(id, 0, 10).error().code, Errc::bad_request) << id;
    EXPECT_EQ(store_->remove(id).error().code, Errc::bad_request) << id;
    if (!id.empty()) {
      EXPECT_EQ(store_->list(id, 10).error().code, Errc::bad_request) << id;
    }
  }
}

TEST_P(MediaStoreConformance, MissingObjects) {
  const std::string id = sha256_hex("never stored");
  EXPECT_EQ(store_->stat(id).error().code, Errc::not_found);
  EXPECT_EQ(store_->open(id, 0, 10).error().code, Errc::not_found);
  EXPECT_TRUE(store_->remove(id).ok());
}

TEST_P(MediaStoreConformance, ListAndRemove) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    auto info = put("object " + std::to_string(i));
    ASSERT_TRUE(info.ok()) << info.error().message;
    ids.push_back(info->id);
  }
  std::sort(ids.begin(), ids.end());

  auto all = store_->list({}, 100);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(all.value()[i].id, ids[i]);
    EXPECT_EQ(all.value()[i].size, 8u);
    EXPECT_GT(all.value()[i].modified, 0);
  }
  EXPECT_TRUE(store_->list({}, 0)->empty());

  // Pages of 3, each after the last id of the one before.
  std::vector<std::string> paged;
  std::string after;
  for (;;) {
    auto page = store_->list(after, 3);
    ASSERT_TRUE(page.ok()) << page.error().message;
    for (const auto& o : page.value()) paged.push_back(o.id);
    if (page->size() < 3) break;
    after = page->back().id;
  }
  EXPECT_EQ(paged, ids);
  // after_id need not be stored: it is a position.
  auto tail = store_->list(sha256_hex("absent"), 100);
  ASSERT_TRUE(tail.ok());
  for (const auto& o : tail.value()) EXPECT_GT(o.id, sha256_hex("absent"));
  EXPECT_EQ(tail->size(), static_cast<size_t>(std::count_if(ids.begin(), ids.end(), [](auto& id) {
              return id > sha256_hex("absent");
            })));

  ASSERT_TRUE(store_->remove(ids[2]).ok());
  EXPECT_EQ(store_->stat(ids[2]).error().code, Errc::not_found);
  EXPECT_EQ(store_->open(ids[2], 0, 1).error().code, Errc::not_found);
  ASSERT_TRUE(store_->remove(ids[2]).ok());  // absent is ok
  auto rest = all_ids();
  ids.erase(ids.begin() + 2);
  EXPECT_EQ(rest, ids);

  // A removed object can be stored again.
  auto again = put("object 0");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(store_->stat(again->id).ok());
}

TEST_P(MediaStoreConformance, ReopenKeepsObjectsAndDropsStaleSpoolFiles) {
  auto info = put("kept");
  ASSERT_TRUE(info.ok());
  // What a crash mid-upload leaves behind.
  { std::ofstream(factory_->spool_dir() + "/upload-crashed.part") << "half an upload"; }
  EXPECT_EQ(spool_files(), 1u);
  store_.reset();
  store_ = factory_->reopen();
  ASSERT_TRUE(store_);
  EXPECT_EQ(spool_files(), 0u);
  auto back = get(info->id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value(), "kept");
  EXPECT_EQ(all_ids(), std::vector<std::string>{info->id});
}

}  // namespace parley::media
