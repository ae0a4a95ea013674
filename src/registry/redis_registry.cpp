#include "registry/redis_registry.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <mutex>
#include <optional>
#include <tuple>

#include "common/clock.h"

namespace parley {

namespace {

using redis::RedisScript;
using redis::Reply;

// An entry's value is "<sessions>:<expires ms>"; an entry whose expiry passed counts as gone.
const RedisScript kAttach(R"lua(
local count = 0
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local c, e = string.match(v, '^(%d+):(%d+)$')
  if c and tonumber(e) > tonumber(ARGV[2]) then count = tonumber(c) end
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%s', count + 1, ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return count + 1
)lua");

// Ends with the node's suffix "|<node>": whether a field is an entry of the node.
const RedisScript kDetach(R"lua(
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local c, e = string.match(v, '^(%d+):(%d+)$')
local left = 0
if c and tonumber(e) > tonumber(ARGV[2]) then left = tonumber(c) - 1 end
if left > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%s', left, e))
  return left
end
redis.call('HDEL', KEYS[1], ARGV[1])
local suffix = ARGV[4]
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, -#suffix) == suffix then return 0 end
end
redis.call('SREM', KEYS[2], ARGV[3])
return 0
)lua");

// The node's live entries of every user in its set on this server get a new expiry; expired
// ones are removed, and users without entries of the node leave the set.
const RedisScript kRefresh(R"lua(
local suffix = ARGV[2]
local now = tonumber(ARGV[3])
local renewed = 0
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. user
  local all = redis.call('HGETALL', key)
  local live = false
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, -#suffix) == suffix then
      local c, e = string.match(all[i + 1], '^(%d+):(%d+)$')
      if c and tonumber(e) > now then
        redis.call('HSET', key, f, c .. ':' .. ARGV[4])
        live = true
        renewed = renewed + 1
      else
        redis.call('HDEL', key, f)
      end
    end
  end
  if live then
    redis.call('PEXPIRE', key, ARGV[5])
  else
    redis.call('SREM', KEYS[1], user)
  end
end
if redis.call('SCARD', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return renewed
)lua");

const RedisScript kClear(R"lua(
local suffix = ARGV[2]
local users = redis.call('SMEMBERS', KEYS[1])
for _, user in ipairs(users) do
  local key = ARGV[1] .. user
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, -#suffix) == suffix then redis.call('HDEL', key, f) end
  end
end
redis.call('DEL', KEYS[1])
return #users
)lua");

// reassert(), one chunk of a server's users: each user's entries of the node become the given
// ones (others of the node removed, counts and expiry set), and the users are added to the
// reassert's set of users (KEYS[1]), which the first chunk starts afresh.
// ARGV: key prefix, node suffix, expires ms, TTL ms, first chunk ("1"/"0"), then per user:
// user, n, and n pairs of field, sessions.
const RedisScript kReassertChunk(R"lua(
local suffix = ARGV[2]
if ARGV[5] == '1' then redis.call('DEL', KEYS[1]) end
local users = {}
local i = 6
while i <= #ARGV do
  local user = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local key = ARGV[1] .. user
  local wanted = {}
  local values = {}
  for j = 0, n - 1 do
    local f = ARGV[i + 2 + 2 * j]
    wanted[f] = true
    values[#values + 1] = f
    values[#values + 1] = ARGV[i + 3 + 2 * j] .. ':' .. ARGV[3]
  end
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if not wanted[f] and string.sub(f, -#suffix) == suffix then redis.call('HDEL', key, f) end
  end
  redis.call('HSET', key, unpack(values))
  redis.call('PEXPIRE', key, ARGV[4])
  users[#users + 1] = user
  i = i + 2 + 2 * n
end
if #users > 0 then
  redis.call('SADD', KEYS[1], unpack(users))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return #users
)lua");

// reassert(), after its chunks on a server: the node's entries of users it no longer holds
// there are removed, and the reassert's set of users (KEYS[2]) becomes the node's (KEYS[1]).
// -1, changing nothing, when the set does not hold the `expected` users (a chunk failed).
// ARGV: key prefix, node suffix, expected users, TTL ms.
const RedisScript kReassertFinish(R"lua(
local suffix = ARGV[2]
local expected = tonumber(ARGV[3])
if expected == 0 then redis.call('DEL', KEYS[2]) end
if redis.call('SCARD', KEYS[2]) ~= expected then
  redis.call('DEL', KEYS[2])
  return -1
end
local gone
if expected == 0 then
  gone = redis.call('SMEMBERS', KEYS[1])
else
  gone = redis.call('SDIFF', KEYS[1], KEYS[2])
end
local removed = 0
for _, user in ipairs(gone) do
  local key = ARGV[1] .. user
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, -#suffix) == suffix then
      redis.call('HDEL', key, f)
      removed = removed + 1
    end
  end
end
if expected == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('RENAME', KEYS[2], KEYS[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return removed
)lua");

// locate() found these entries expired: removed unless renewed meanwhile.
const RedisScript kClean(R"lua(
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 0
)lua");

// A claim is "<expires ms>|<instance>"; 1 when taken or renewed, else the holder.
const RedisScript kClaim(R"lua(
local v = redis.call('GET', KEYS[1])
if v then
  local e, holder = string.match(v, '^(%d+)|(.*)$')
  if e and holder ~= ARGV[1] and tonumber(e) > tonumber(ARGV[2]) then return holder end
end
redis.call('SET', KEYS[1], ARGV[3] .. '|' .. ARGV[1], 'PX', ARGV[4])
return 1
)lua");

const RedisScript kRelease(R"lua(
local v = redis.call('GET', KEYS[1])
if v then
  local e, holder = string.match(v, '^(%d+)|(.*)$')
  if holder == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
end
return 0
)lua");

std::string entry_field(const std::string& device, NodeId node) {
  return device + "|" + std::to_string(node);
}

std::string node_suffix(NodeId node) { return "|" + std::to_string(node); }

// The Status of a script's reply: unavailable when no reply came, internal for an error reply.
Status status_of(const Result<Reply>& r, const std::string& address) {
  auto c = redis::checked(r, address);
  if (!c) return c.error();
  return ok_status();
}

template <class T>
bool parse_int(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

RedisRegistry::RedisRegistry(std::shared_ptr<redis::RedisShards> shards,
                             std::chrono::milliseconds ttl, Clock clock, std::string prefix)
    : shards_(std::move(shards)),
      ttl_ms_(std::max<int64_t>(1, ttl.count())),
      clock_(std::move(clock)),
      prefix_(std::move(prefix)) {}

int64_t RedisRegistry::now() const { return clock_ ? clock_() : now_ms(); }

void RedisRegistry::attach(const std::string& user, const std::string& device_id, NodeId node,
                           Done done) {
  const int64_t t = now();
  auto& client = shards_->for_key(user);
  client.eval(kAttach, {user_key(user), node_set_key(node)},
              {entry_field(device_id, node), std::to_string(t), std::to_string(t + ttl_ms_), user,
               std::to_string(ttl_ms_)},
              [done = std::move(done), &client](Result<Reply> r) {
                if (done) done(status_of(r, client.address()));
              });
}

void RedisRegistry::detach(const std::string& user, const std::string& device_id, NodeId node,
                           Done done) {
  auto& client = shards_->for_key(user);
  client.eval(kDetach, {user_key(user), node_set_key(node)},
              {entry_field(device_id, node), std::to_string(now()), user, node_suffix(node)},
              [done = std::move(done), &client](Result<Reply> r) {
                if (done) done(status_of(r, client.address()));
              });
}

void RedisRegistry::locate(std::vector<std::string> users,
                           std::function<void(Result<std::vector<UserLocation>>)> done) {
  if (users.empty()) {
    done(std::vector<UserLocation>{});
    return;
  }
  struct State {
    std::vector<UserLocation> out;
    std::atomic<size_t> shards_left{0};
    std::mutex mu;
    std::optional<Error> failed;
    std::function<void(Result<std::vector<UserLocation>>)> done;
  };
  auto state = std::make_shared<State>();
  state->out.resize(users.size());
  state->done = std::move(done);
  // Which users (their positions in the answer) each server holds.
  std::vector<std::vector<size_t>> by_shard(shards_->size());
  for (size_t i = 0; i < users.size(); ++i) {
    by_shard[shards_->shard_of(users[i])].push_back(i);
    state->out[i].user = users[i];
  }
  size_t involved = 0;
  for (const auto& s : by_shard) involved += s.empty() ? 0 : 1;
  state->shards_left = involved;
  const int64_t t = now();
  for (size_t shard = 0; shard < by_shard.size(); ++shard) {
    if (by_shard[shard].empty()) continue;
    std::vector<std::vector<std::string>> commands;
    commands.reserve(by_shard[shard].size());
    for (size_t i : by_shard[shard]) commands.push_back({"HGETALL", user_key(users[i])});
    auto& client = shards_->at(shard);
    client.pipeline(std::move(commands), [key_prefix = prefix_ + "reg:", state, t, &client,
                                          positions = std::move(by_shard[shard])](
                                             Result<std::vector<Reply>> r) {
      if (!r) {
        std::lock_guard lock(state->mu);
        if (!state->failed) state->failed = r.error();
      } else {
        for (size_t k = 0; k < positions.size(); ++k) {
          const Reply& reply = r.value()[k];
          auto& loc = state->out[positions[k]];
          if (reply.is_error()) {
            std::lock_guard lock(state->mu);
            if (!state->failed)
              state->failed = Error{Errc::internal, "redis " + client.address() + ": " + reply.str};
            continue;
          }
          std::vector<std::string> expired;  // field, value pairs
          for (size_t j = 0; j + 1 < reply.elements.size(); j += 2) {
            const std::string& field = reply.elements[j].str;
            const std::string& value = reply.elements[j + 1].str;
            auto bar = field.rfind('|');
            auto colon = value.find(':');
            NodeId node = 0;
            int64_t expires = 0;
            if (bar == std::string::npos || colon == std::string::npos ||
                !parse_int(std::string_view(field).substr(bar + 1), node) ||
                !parse_int(std::string_view(value).substr(colon + 1), expires))
              continue;  // not ours: ignored
            if (expires <= t) {
              expired.push_back(field);
              expired.push_back(value);
              continue;
            }
            loc.devices.push_back(DeviceLocation{field.substr(0, bar), node});
          }
          std::sort(loc.devices.begin(), loc.devices.end(),
                    [](const DeviceLocation& a, const DeviceLocation& b) {
                      return std::tie(a.device_id, a.node) < std::tie(b.device_id, b.node);
                    });
          if (!expired.empty())
            client.eval(kClean, {key_prefix + loc.user}, std::move(expired), [](Result<Reply>) {});
        }
      }
      if (--state->shards_left > 0) return;
      if (state->failed) {
        state->done(*state->failed);
      } else {
        state->done(std::move(state->out));
      }
    });
  }
}

void RedisRegistry::on_every_shard(const RedisScript& script, std::vector<std::string> keys,
                                   std::vector<std::string> args, Done done) {
  struct State {
    std::atomic<size_t> left{0};
    std::mutex mu;
    std::optional<Error> failed;
    Done done;
  };
  auto state = std::make_shared<State>();
  state->left = shards_->size();
  state->done = std::move(done);
  for (size_t shard = 0; shard < shards_->size(); ++shard) {
    auto& client = shards_->at(shard);
    client.eval(script, keys, args, [state, &client](Result<Reply> r) {
      auto s = status_of(r, client.address());
      if (!s) {
        std::lock_guard lock(state->mu);
        if (!state->failed) state->failed = s.error();
      }
      if (--state->left > 0) return;
      if (!state->done) return;
      if (state->failed) {
        state->done(*state->failed);
      } else {
        state->done(ok_status());
      }
    });
  }
}

void RedisRegistry::refresh(NodeId node, Done done) {
  const int64_t t = now();
  on_every_shard(kRefresh, {node_set_key(node)},
                 {prefix_ + "reg:", node_suffix(node), std::to_string(t),
                  std::to_string(t + ttl_ms_), std::to_string(ttl_ms_)},
                 std::move(done));
}

// Per server, the node's users there go in chunks of at most kReassertChunkUsers (each chunk
// one script: Redis serves other clients between chunks, so a node with many sessions never
// holds a server for long), then one script swaps in the new set of users and removes what is
// no longer live. They are sent back to back on the server's connection, each call ahead of
// whatever the node asks of that server after reassert() returned (registry.h: calls apply in
// call order). One exception: a script the server forgot (SCRIPT FLUSH, not a restart: a new
// connection loads every script again) is sent again after what was sent meanwhile; the
// finishing script then sees a chunk missing and changes nothing (the next reassert applies).
void RedisRegistry::reassert(NodeId node, std::vector<SessionEntry> live, Done done) {
  const int64_t t = now();
  std::vector<std::vector<const SessionEntry*>> by_shard(shards_->size());
  for (const auto& e : live)
    if (e.sessions > 0) by_shard[shards_->shard_of(e.user)].push_back(&e);
  struct State {
    std::atomic<size_t> left{0};
    std::mutex mu;
    std::optional<Error> failed;
    Done done;
    void fail(Error e) {
      std::lock_guard lock(mu);
      if (!failed) failed = std::move(e);
    }
    void one_done() {
      if (--left > 0 || !done) return;
      if (failed) return done(*failed);
      done(ok_status());
    }
  };
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  const std::string key_prefix = prefix_ + "reg:", suffix = node_suffix(node),
                    expires = std::to_string(t + ttl_ms_), ttl = std::to_string(ttl_ms_);
  const std::string set_key = node_set_key(node), new_set_key = set_key + ":reassert";
  // Every call is counted before the first is sent: a completion may come before the next.
  std::vector<std::vector<std::vector<std::string>>> chunks(shards_->size());
  std::vector<size_t> users_of(shards_->size(), 0);
  size_t calls = 0;
  for (size_t shard = 0; shard < by_shard.size(); ++shard) {
    auto& entries = by_shard[shard];
    std::sort(entries.begin(), entries.end(), [](const SessionEntry* a, const SessionEntry* b) {
      return std::tie(a->user, a->device_id) < std::tie(b->user, b->device_id);
    });
    auto& args = chunks[shard];
    size_t in_chunk = 0;
    for (size_t i = 0, end = 0; i < entries.size(); i = end) {
      const std::string& user = entries[i]->user;
      for (end = i; end < entries.size() && entries[end]->user == user;) ++end;
      if (args.empty() || in_chunk == kReassertChunkUsers) {
        args.push_back({key_prefix, suffix, expires, ttl, args.empty() ? "1" : "0"});
        in_chunk = 0;
      }
      auto& chunk = args.back();
      chunk.push_back(user);
      chunk.push_back(std::to_string(end - i));
      for (size_t j = i; j < end; ++j) {
        chunk.push_back(entry_field(entries[j]->device_id, node));
        chunk.push_back(std::to_string(entries[j]->sessions));
      }
      ++in_chunk;
      ++users_of[shard];
    }
    calls += chunks[shard].size() + 1;
  }
  state->left = calls;
  for (size_t shard = 0; shard < by_shard.size(); ++shard) {
    auto& client = shards_->at(shard);
    for (auto& args : chunks[shard])
      client.eval(kReassertChunk, {new_set_key}, std::move(args),
                  [state, &client](Result<Reply> r) {
                    if (auto s = status_of(r, client.address()); !s) state->fail(s.error());
                    state->one_done();
                  });
    client.eval(kReassertFinish, {set_key, new_set_key},
                {key_prefix, suffix, std::to_string(users_of[shard]), ttl},
                [state, &client](Result<Reply> r) {
                  auto c = redis::checked(r, client.address());
                  if (!c)
                    state->fail(c.error());
                  else if (c->type == Reply::Type::integer && c->integer < 0)
                    state->fail(Error{Errc::unavailable, "redis " + client.address() +
                                                             ": reassert incomplete (a part "
                                                             "failed); the next one applies"});
                  state->one_done();
                });
  }
}

void RedisRegistry::clear_node(NodeId node, Done done) {
  on_every_shard(kClear, {node_set_key(node)}, {prefix_ + "reg:", node_suffix(node)},
                 std::move(done));
}

void RedisRegistry::claim_node(NodeId node, const std::string& instance, Done done) {
  const int64_t t = now();
  const std::string id = std::to_string(node);
  auto& client = shards_->for_key(id);
  client.eval(kClaim, {prefix_ + "node:" + id},
              {instance, std::to_string(t), std::to_string(t + ttl_ms_), std::to_string(ttl_ms_)},
              [done = std::move(done), &client, node](Result<Reply> r) {
                if (!done) return;
                auto c = redis::checked(r, client.address());
                if (!c) return done(c.error());
                if (c->type == Reply::Type::string)
                  return done(Error{Errc::conflict, "node " + std::to_string(node) +
                                                        " is held by instance " + c->str});
                done(ok_status());
              });
}

void RedisRegistry::release_node(NodeId node, const std::string& instance, Done done) {
  const std::string id = std::to_string(node);
  auto& client = shards_->for_key(id);
  client.eval(kRelease, {prefix_ + "node:" + id}, {instance},
              [done = std::move(done), &client](Result<Reply> r) {
                if (done) done(status_of(r, client.address()));
              });
}

}  // namespace parley
