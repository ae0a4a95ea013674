#include "presence/redis_presence.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>

namespace parley::presence {
namespace {

using redis::RedisScript;
using redis::Reply;

// The transition counter: one more than the last, and never below now * 1000 (see the header).
constexpr std::string_view kVersionFn = R"(
local function version(p, now)
  local v = tonumber(redis.call('GET', p .. 'presence:version') or '0') + 1
  if v < now * 1000 then v = now * 1000 end
  local s = string.format('%.0f', v)
  redis.call('SET', p .. 'presence:version', s)
  return s
end
)";

// ARGV: prefix, now, then (index in the batch, user, session) triples. Returns (index,
// version) pairs for the users it brought online.
const RedisScript& touch_script() {
  static const RedisScript s(std::string(kVersionFn) + R"(
local p, now = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 3 do
  local idx, user, sess = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local k = p .. 'presence:s:' .. user
  local was = redis.call('HLEN', k)
  local t = string.format('%.0f', math.max(tonumber(redis.call('HGET', k, sess) or '0'), now))
  redis.call('HSET', k, sess, t)
  redis.call('ZADD', p .. 'presence:expiry', t, user .. '\n' .. sess)
  if was == 0 then
    redis.call('DEL', p .. 'presence:off:' .. user)
    out[#out + 1] = idx
    out[#out + 1] = version(p, now)
  end
end
return out
)");
  return s;
}

// ARGV: prefix, now, ttl, user, session. Returns {version} if the user went offline.
const RedisScript& drop_script() {
  static const RedisScript s(std::string(kVersionFn) + R"(
local p, now, user, sess = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5]
local k = p .. 'presence:s:' .. user
if redis.call('HDEL', k, sess) == 0 then return {} end
redis.call('ZREM', p .. 'presence:expiry', user .. '\n' .. sess)
if redis.call('HLEN', k) > 0 then return {} end
redis.call('SET', p .. 'presence:off:' .. user, ARGV[2], 'PX', ARGV[3])
return {version(p, now)}
)");
  return s;
}

// ARGV: prefix, now, ttl, limit. Returns {sessions looked at, then (user, last_seen, version)
// triples for the users it took offline}.
const RedisScript& expire_script() {
  static const RedisScript s(std::string(kVersionFn) + R"(
local p, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cutoff = now - ttl
local z = p .. 'presence:expiry'
local members = redis.call('ZRANGEBYSCORE', z, '-inf', '(' .. string.format('%.0f', cutoff),
                           'LIMIT', 0, ARGV[4])
local newest, order = {}, {}
for _, m in ipairs(members) do
  local nl = string.find(m, '\n', 1, true)
  local user, sess = string.sub(m, 1, nl - 1), string.sub(m, nl + 1)
  local k = p .. 'presence:s:' .. user
  local t = redis.call('HGET', k, sess)
  if not t then
    redis.call('ZREM', z, m)
  elseif tonumber(t) < cutoff then
    redis.call('HDEL', k, sess)
    redis.call('ZREM', z, m)
    t = tonumber(t)
    if newest[user] == nil then
      order[#order + 1] = user
      newest[user] = t
    elseif t > newest[user] then
      newest[user] = t
    end
  end
end
local out = {#members}
for _, user in ipairs(order) do
  if redis.call('HLEN', p .. 'presence:s:' .. user) == 0 then
    local ls = string.format('%.0f', newest[user])
    redis.call('SET', p .. 'presence:off:' .. user, ls, 'PX', ARGV[3])
    out[#out + 1] = user
    out[#out + 1] = ls
    out[#out + 1] = version(p, now)
  end
end
return out
)");
  return s;
}

// ARGV: prefix, users. Returns (online 0/1, last_seen) pairs in the order asked.
const RedisScript& status_script() {
  static const RedisScript s(R"(
local p = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local vals = redis.call('HVALS', p .. 'presence:s:' .. ARGV[i])
  if #vals > 0 then
    local latest = 0
    for _, v in ipairs(vals) do
      local n = tonumber(v)
      if n > latest then latest = n end
    end
    out[#out + 1] = 1
    out[#out + 1] = string.format('%.0f', latest)
  else
    out[#out + 1] = 0
    out[#out + 1] = redis.call('GET', p .. 'presence:off:' .. ARGV[i]) or '0'
  end
end
return out
)");
  return s;
}

// An integer reply, or a string holding a decimal integer.
template <class T>
std::optional<T> number(const Reply& r) {
  if (r.type == Reply::Type::integer) return static_cast<T>(r.integer);
  if (r.type != Reply::Type::string && r.type != Reply::Type::status) return std::nullopt;
  T v{};
  auto [end, ec] = std::from_chars(r.str.data(), r.str.data() + r.str.size(), v);
  if (ec != std::errc() || end != r.str.data() + r.str.size()) return std::nullopt;
  return v;
}

Error malformed(std::string_view what, const Reply& r) {
  return Error{Errc::internal, fmt::format("presence {}: unexpected reply {}", what, r.describe())};
}

// An array reply whose size is a multiple of `stride` (after `skip` leading elements).
Result<const std::vector<Reply>*> array_of(std::string_view what, const Result<Reply>& r,
                                           size_t stride, size_t skip = 0) {
  if (!r) return r.error();
  if (r.value().is_error())
    return Error{Errc::unavailable, fmt::format("presence {}: {}", what, r->str)};
  if (r->type != Reply::Type::array || r->elements.size() < skip ||
      (r->elements.size() - skip) % stride != 0)
    return malformed(what, r.value());
  return &r->elements;
}

// Runs one part per server and completes once all of them did: the first error, or every
// part's value in server order.
template <class T>
class Gather {
 public:
  using Finish = std::function<void(Result<std::vector<T>>)>;
  Gather(size_t parts, Finish finish) : results_(parts), left_(parts), finish_(std::move(finish)) {}
  void set(size_t part, Result<T> r) {
    std::unique_lock lock(mu_);
    if (!r && !error_) error_ = r.error();
    if (r) results_[part] = std::move(r.value());
    if (--left_ > 0) return;
    lock.unlock();
    if (error_) return finish_(*error_);
    finish_(std::move(results_));
  }

 private:
  std::mutex mu_;
  std::vector<T> results_;
  size_t left_;
  std::optional<Error> error_;
  Finish finish_;
};

}  // namespace

RedisPresence::RedisPresence(std::shared_ptr<redis::RedisShards> shards,
                             std::chrono::milliseconds ttl, std::string prefix)
    : shards_(std::move(shards)),
      ttl_ms_(std::max<int64_t>(1, ttl.count())),
      prefix_(std::move(prefix)) {}

void RedisPresence::touch(std::vector<SessionTouch> sessions, int64_t now_ms, Done done) {
  for (const auto& t : sessions)
    if (t.user.empty() || t.session_key.empty()) {
      if (done) done(Error{Errc::bad_request, "presence touch: empty user or session key"});
      return;
    }
  if (sessions.empty()) {
    if (done) done(std::vector<Transition>{});
    return;
  }
  // One script per server, with each entry's place in the batch so that the users brought
  // online are returned in the batch's order.
  std::map<size_t, std::vector<std::string>> args;
  for (size_t i = 0; i < sessions.size(); ++i) {
    auto& a = args[shards_->shard_of(sessions[i].user)];
    if (a.empty()) {
      a.push_back(prefix_);
      a.push_back(std::to_string(now_ms));
    }
    a.push_back(std::to_string(i));
    a.push_back(sessions[i].user);
    a.push_back(sessions[i].session_key);
  }
  auto batch = std::make_shared<std::vector<SessionTouch>>(std::move(sessions));
  auto gather = std::make_shared<Gather<std::vector<std::pair<size_t, uint64_t>>>>(
      args.size(), [batch, now_ms, done = std::move(done)](auto r) {
        if (!done) return;
        if (!r) return done(r.error());
        std::vector<std::pair<size_t, uint64_t>> all;
        for (auto& part : r.value()) all.insert(all.end(), part.begin(), part.end());
        std::sort(all.begin(), all.end());
        std::vector<Transition> out;
        for (auto [index, version] : all)
          out.push_back(Transition{(*batch)[index].user, true, now_ms, version});
        done(std::move(out));
      });
  size_t part = 0;
  for (auto& [shard, a] : args) {
    shards_->at(shard).eval(touch_script(), {}, std::move(a), [gather, part](Result<Reply> r) {
      auto arr = array_of("touch", r, 2);
      if (!arr) return gather->set(part, arr.error());
      std::vector<std::pair<size_t, uint64_t>> on;
      for (size_t i = 0; i < arr.value()->size(); i += 2) {
        auto index = number<size_t>((*arr.value())[i]);
        auto version = number<uint64_t>((*arr.value())[i + 1]);
        if (!index || !version) return gather->set(part, malformed("touch", r.value()));
        on.emplace_back(*index, *version);
      }
      gather->set(part, std::move(on));
    });
    ++part;
  }
}

void RedisPresence::drop(const std::string& user, const std::string& session_key, int64_t now_ms,
                         Done done) {
  if (user.empty() || session_key.empty()) {
    if (done) done(Error{Errc::bad_request, "presence drop: empty user or session key"});
    return;
  }
  shards_->for_key(user).eval(
      drop_script(), {},
      {prefix_, std::to_string(now_ms), std::to_string(ttl_ms_), user, session_key},
      [user, now_ms, done = std::move(done)](Result<Reply> r) {
        if (!done) return;
        auto arr = array_of("drop", r, 1);
        if (!arr) return done(arr.error());
        std::vector<Transition> out;
        if (!arr.value()->empty()) {
          auto version = number<uint64_t>((*arr.value())[0]);
          if (!version) return done(malformed("drop", r.value()));
          out.push_back(Transition{user, false, now_ms, *version});
        }
        done(std::move(out));
      });
}

void RedisPresence::expire_shard(size_t shard, int64_t now_ms,
                                 std::function<void(Result<std::vector<Transition>>)> done) {
  auto found = std::make_shared<std::vector<Transition>>();
  // Runs the script again while it found a full batch: a node that died with many sessions
  // is removed in steps, none of which holds Redis for long. The step holds itself only
  // weakly; the pending callback holds it strongly, so it lives as long as a run is pending.
  auto step = std::make_shared<std::function<void()>>();
  *step = [this, shard, now_ms, found, weak = std::weak_ptr<std::function<void()>>(step),
           done = std::move(done)]() {
    shards_->at(shard).eval(
        expire_script(), {},
        {prefix_, std::to_string(now_ms), std::to_string(ttl_ms_), std::to_string(kExpireBatch)},
        [found, self = weak.lock(), done](Result<Reply> r) {
          auto arr = array_of("expire", r, 3, 1);
          if (!arr) return done(arr.error());
          auto looked = number<int64_t>((*arr.value())[0]);
          if (!looked) return done(malformed("expire", r.value()));
          for (size_t i = 1; i < arr.value()->size(); i += 3) {
            auto last_seen = number<int64_t>((*arr.value())[i + 1]);
            auto version = number<uint64_t>((*arr.value())[i + 2]);
            if (!last_seen || !version) return done(malformed("expire", r.value()));
            found->push_back(Transition{(*arr.value())[i].str, false, *last_seen, *version});
          }
          if (*looked >= kExpireBatch) return (*self)();
          done(std::move(*found));
        });
  };
  (*step)();
}

void RedisPresence::expire(int64_t now_ms, Done done) {
  auto gather = std::make_shared<Gather<std::vector<Transition>>>(
      shards_->size(), [done = std::move(done)](auto r) {
        if (!done) return;
        if (!r) return done(r.error());
        std::vector<Transition> out;
        for (auto& part : r.value()) out.insert(out.end(), part.begin(), part.end());
        done(std::move(out));
      });
  for (size_t shard = 0; shard < shards_->size(); ++shard)
    expire_shard(shard, now_ms, [gather, shard](auto r) { gather->set(shard, std::move(r)); });
}

void RedisPresence::status(std::vector<std::string> users, StatusDone done) const {
  for (const auto& user : users)
    if (user.empty()) return done(Error{Errc::bad_request, "presence status: empty user"});
  if (users.empty()) return done(std::vector<Status>{});
  // Per server: the places in `users` it answers for, and the script's arguments.
  std::map<size_t, std::pair<std::vector<size_t>, std::vector<std::string>>> parts;
  for (size_t i = 0; i < users.size(); ++i) {
    auto& [places, a] = parts[shards_->shard_of(users[i])];
    if (a.empty()) a.push_back(prefix_);
    places.push_back(i);
    a.push_back(users[i]);
  }
  auto out = std::make_shared<std::vector<Status>>(users.size());
  for (size_t i = 0; i < users.size(); ++i) (*out)[i].user = std::move(users[i]);
  auto gather = std::make_shared<Gather<Unit>>(parts.size(), [out, done = std::move(done)](auto r) {
    if (!r) return done(r.error());
    done(std::move(*out));
  });
  size_t part = 0;
  for (auto& [shard, p] : parts) {
    auto places = std::make_shared<std::vector<size_t>>(std::move(p.first));
    shards_->at(shard).eval(status_script(), {}, std::move(p.second),
                            [gather, part, places, out](Result<Reply> r) {
                              auto arr = array_of("status", r, 2);
                              if (!arr) return gather->set(part, arr.error());
                              if (arr.value()->size() != places->size() * 2)
                                return gather->set(part, malformed("status", r.value()));
                              for (size_t i = 0; i < places->size(); ++i) {
                                auto online = number<int>((*arr.value())[2 * i]);
                                auto last_seen = number<int64_t>((*arr.value())[2 * i + 1]);
                                if (!online || !last_seen)
                                  return gather->set(part, malformed("status", r.value()));
                                auto& s = (*out)[(*places)[i]];
                                s.online = *online == 1;
                                s.last_seen = *last_seen;
                              }
                              gather->set(part, Unit{});
                            });
    ++part;
  }
}

}  // namespace parley::presence
