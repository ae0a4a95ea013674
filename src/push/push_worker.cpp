#include "push/push_worker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <future>

#include "common/clock.h"
#include "push/payload.h"

namespace parley::push {

namespace {

constexpr size_t kMaxPreviewBytes = 4096;  // every provider cuts further to its own limit
constexpr int64_t kMaxRetryAfterMs = 24 * 3600 * 1000;

// Calls a Store method and waits for its callback. Only ever from the worker's own threads:
// the callback may run on a store thread, which must never block on itself.
template <class T, class Call>
Result<T> await(Call&& call) {
  auto p = std::make_shared<std::promise<Result<T>>>();
  auto f = p->get_future();
  call([p](Result<T> r) { p->set_value(std::move(r)); });
  return f.get();
}

const char* provider_name(store::PushProvider p) {
  switch (p) {
    case store::PushProvider::webhook:
      return "webhook";
    case store::PushProvider::fcm:
      return "fcm";
    case store::PushProvider::apns:
      return "apns";
  }
  return "unknown";
}

const char* outcome_name(store::PushOutcome o) {
  switch (o) {
    case store::PushOutcome::sent:
      return "sent";
    case store::PushOutcome::retry:
      return "retry";
    case store::PushOutcome::dead:
      return "dead";
    case store::PushOutcome::token_gone:
      return "token_gone";
  }
  return "unknown";
}

// What a preview shows of a message: its text; for media a label and the caption.
std::string preview_text(const store::Message& m) {
  if (m.kind == store::MessageKind::text) return std::string(utf8_prefix(m.body, kMaxPreviewBytes));
  if (m.kind != store::MessageKind::media) return {};
  namespace json = boost::json;
  json::error_code ec;
  json::value v = json::parse(m.body, ec);
  std::string kind, caption;
  if (!ec && v.is_object()) {
    const auto& o = v.get_object();
    if (const auto* k = o.if_contains("kind"); k && k->is_string()) kind = k->get_string();
    if (const auto* c = o.if_contains("caption"); c && c->is_string()) caption = c->get_string();
  }
  std::string label = kind == "image"   ? "[photo]"
                      : kind == "video" ? "[video]"
                      : kind == "audio" ? "[audio]"
                                        : "[file]";
  if (!caption.empty()) label += " " + caption;
  return std::string(utf8_prefix(label, kMaxPreviewBytes));
}

}  // namespace

PushWorker::PushWorker(store::Store& store,
                       std::map<store::PushProvider, std::unique_ptr<Provider>> providers,
                       const PushConfig& config)
    : store_(store), config_(config), rng_(std::random_device{}()) {
  if (config_.concurrency == 0) config_.concurrency = 1;
  if (config_.max_attempts == 0) config_.max_attempts = 1;
  for (auto& [kind, provider] : providers) {
    if (!provider) continue;
    auto lane = std::make_unique<Lane>();
    lane->provider = std::move(provider);
    lanes_.emplace(kind, std::move(lane));
  }
}

PushWorker::~PushWorker() { stop(); }

void PushWorker::start() {
  std::lock_guard lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  for (auto& [kind, lane] : lanes_) {
    for (uint32_t i = 0; i < config_.concurrency; ++i) {
      lane->threads.emplace_back([this, l = lane.get()] { lane_loop(*l); });
    }
  }
  dispatcher_ = std::thread([this] { dispatch_loop(); });
}

void PushWorker::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [kind, lane] : lanes_) lane->cv.notify_all();
    dispatch_cv_.notify_all();
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  for (auto& [kind, lane] : lanes_) {
    for (auto& t : lane->threads) t.join();
    lane->threads.clear();
    lane->queue.clear();  // claimed, never started: back in the queue when the lease ends
  }
}

PushWorker::Stats PushWorker::stats() const {
  return Stats{sent_.load(), retried_.load(), failed_.load(), tokens_dropped_.load(),
               in_flight_.load()};
}

int64_t PushWorker::retry_delay_ms(const PushConfig& config, uint32_t attempts,
                                   std::optional<int64_t> retry_after_ms, std::mt19937_64& rng) {
  if (retry_after_ms) return std::clamp<int64_t>(*retry_after_ms, 0, kMaxRetryAfterMs);
  const int64_t cap = config.backoff_max_ms;
  int64_t ceiling = config.backoff_base_ms;
  for (uint32_t i = 0; i < attempts && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  if (ceiling <= 0) return 0;
  return std::uniform_int_distribution<int64_t>(0, ceiling)(rng);
}

size_t PushWorker::free_slots_locked() const {
  size_t free = 0;
  for (const auto& [kind, lane] : lanes_) {
    const size_t busy = lane->queue.size() + lane->running;
    if (busy < config_.concurrency) free += config_.concurrency - busy;
  }
  return free;
}

void PushWorker::dispatch_loop() {
  const auto poll = std::chrono::milliseconds(std::max<uint32_t>(config_.poll_ms, 1));
  const auto stats_every = std::chrono::seconds(std::max<uint32_t>(config_.stats_interval_s, 1));
  auto next_stats = std::chrono::steady_clock::now() + stats_every;
  for (;;) {
    size_t limit;
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
      limit = free_slots_locked();
    }
    if (std::chrono::steady_clock::now() >= next_stats) {
      log_stats();
      next_stats = std::chrono::steady_clock::now() + stats_every;
    }
    bool full_batch = false;
    if (limit > 0) {
      const int64_t now = now_ms();
      auto jobs = await<std::vector<store::PushJob>>([&](auto cb) {
        store_.claim_push_jobs(now, static_cast<uint32_t>(limit),
                               now + int64_t{config_.lease_s} * 1000, std::move(cb));
      });
      if (!jobs) {
        spdlog::warn("push: claiming jobs failed: {}", jobs.error().message);
      } else {
        full_batch = jobs->size() >= limit;
        for (auto& job : jobs.value()) {
          std::unique_lock lock(mu_);
          auto it = lanes_.find(job.target.provider);
          if (it == lanes_.end()) {
            lock.unlock();
            std::string error =
                std::string("provider not configured: ") + provider_name(job.target.provider);
            finish(std::move(job), store::PushOutcome::dead, 0, std::move(error));
            continue;
          }
          Lane& lane = *it->second;
          if (lane.queue.size() + lane.running >= 2 * size_t{config_.concurrency}) {
            // Claimed along with other providers' jobs while this provider is saturated: it
            // keeps its lease and comes back when that expires.
            spdlog::debug("push: {} busy, job for {}/{} waits for its lease",
                          provider_name(job.target.provider), job.user, job.device_id);
            continue;
          }
          lane.queue.push_back(std::move(job));
          lane.cv.notify_one();
        }
      }
    }
    std::unique_lock lock(mu_);
    if (stopping_) return;
    if (!full_batch) dispatch_cv_.wait_for(lock, poll, [&] { return stopping_; });
  }
}

void PushWorker::lane_loop(Lane& lane) {
  std::unique_lock lock(mu_);
  for (;;) {
    lane.cv.wait(lock, [&] { return stopping_ || !lane.queue.empty(); });
    if (stopping_) return;
    store::PushJob job = std::move(lane.queue.front());
    lane.queue.pop_front();
    ++lane.running;
    lock.unlock();
    process(lane, std::move(job));
    lock.lock();
    --lane.running;
  }
}

void PushWorker::process(Lane& lane, store::PushJob job) {
  // A job whose lease could run out before its answer might be claimed by another worker
  // meanwhile: leave it to the next claim. (It needs one request timeout left, but never
  // more than half the lease, or a short lease would never send anything.)
  const int64_t needed = std::min<int64_t>(config_.timeout_ms, int64_t{config_.lease_s} * 1000 / 2);
  if (now_ms() + needed > job.lease_until) {
    spdlog::debug("push: lease of job {}/{} chat {} too short to send; left to expire", job.user,
                  job.device_id, job.chat_id);
    return;
  }
  in_flight_.fetch_add(1);
  const Notification n = notification_of(job);
  SendResult r = lane.provider->send(n);
  const uint32_t attempts = job.attempts + 1;
  switch (r.status) {
    case SendStatus::ok:
      finish(std::move(job), store::PushOutcome::sent, 0, {});
      break;
    case SendStatus::token_gone:
      finish(std::move(job), store::PushOutcome::token_gone, 0, std::move(r.error));
      break;
    case SendStatus::failed:
      finish(std::move(job), store::PushOutcome::dead, 0, std::move(r.error));
      break;
    case SendStatus::retry:
      if (attempts >= config_.max_attempts) {
        finish(std::move(job), store::PushOutcome::dead, 0,
               "gave up after " + std::to_string(attempts) + " attempts: " + r.error);
      } else {
        int64_t delay;
        {
          std::lock_guard lock(mu_);
          delay = retry_delay_ms(config_, job.attempts, r.retry_after_ms, rng_);
        }
        finish(std::move(job), store::PushOutcome::retry, now_ms() + delay, std::move(r.error));
      }
      break;
  }
  in_flight_.fetch_sub(1);
}

Notification PushWorker::notification_of(const store::PushJob& job) {
  Notification n;
  n.target = job.target;
  n.chat_id = job.chat_id;
  n.count = job.count;
  n.sender = job.last_sender;
  n.last_seq = job.last_seq;
  n.badge = job.count;  // when the unread total cannot be read
  auto chats =
      await<store::ChatList>([&](auto cb) { store_.list_chats(job.user, 1, {}, std::move(cb)); });
  if (chats) {
    n.badge = chats->unread_total;
  } else {
    spdlog::warn("push: badge for {}: {}", job.user, chats.error().message);
  }
  auto settings =
      await<store::UserSettings>([&](auto cb) { store_.get_settings(job.user, std::move(cb)); });
  if (!settings || !settings->push_preview) return n;
  store::HistoryQuery q;
  q.user = job.user;
  q.chat_id = job.chat_id;
  q.before_seq = job.last_seq + 1;
  q.limit = 1;
  auto page = await<store::HistoryPage>([&](auto cb) { store_.history(q, std::move(cb)); });
  if (page && !page->messages.empty() && page->messages.back().seq == job.last_seq) {
    n.preview = preview_text(page->messages.back());
  }
  return n;
}

void PushWorker::finish(store::PushJob job, store::PushOutcome outcome, int64_t retry_at,
                        std::string error) {
  const std::string who = job.user + "/" + job.device_id;
  const uint64_t chat = job.chat_id;
  const char* provider = provider_name(job.target.provider);
  if (!error.empty()) {
    spdlog::log(outcome == store::PushOutcome::retry ? spdlog::level::debug : spdlog::level::info,
                "push: {} {} chat {}: {} ({})", provider, who, chat, outcome_name(outcome), error);
  }
  auto done = await<Unit>([&](auto cb) {
    store_.finish_push_job(std::move(job), outcome, retry_at, std::move(error), std::move(cb));
  });
  if (!done) {
    spdlog::warn("push: finishing job {} chat {} failed: {}", who, chat, done.error().message);
    return;
  }
  switch (outcome) {
    case store::PushOutcome::sent:
      sent_.fetch_add(1);
      break;
    case store::PushOutcome::retry:
      retried_.fetch_add(1);
      break;
    case store::PushOutcome::dead:
      failed_.fetch_add(1);
      break;
    case store::PushOutcome::token_gone:
      tokens_dropped_.fetch_add(1);
      break;
  }
}

void PushWorker::log_stats() {
  const Stats s = stats();
  auto q = await<store::PushQueueStats>([&](auto cb) { store_.push_queue_stats(std::move(cb)); });
  if (!q) {
    spdlog::info("push: sent={} retried={} dead={} tokens_dropped={} (queue stats: {})", s.sent,
                 s.retried, s.failed, s.tokens_dropped, q.error().message);
    return;
  }
  const int64_t oldest_age_ms =
      q->oldest_created_at > 0 ? std::max<int64_t>(0, now_ms() - q->oldest_created_at) : 0;
  spdlog::info(
      "push: sent={} retried={} dead={} tokens_dropped={} in_flight={} queue_depth={} "
      "oldest_age_ms={} dead_letters={}",
      s.sent, s.retried, s.failed, s.tokens_dropped, s.in_flight, q->depth, oldest_age_ms,
      q->dead_letters);
}

}  // namespace parley::push
