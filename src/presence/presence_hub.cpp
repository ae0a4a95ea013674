#include "presence/presence_hub.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <limits>

namespace json = boost::json;

namespace parley::presence {

json::array statuses_array(const std::vector<Status>& statuses) {
  json::array out;
  out.reserve(statuses.size());
  for (const auto& s : statuses) {
    json::object o{{"user", s.user}};
    if (s.hidden) {
      o["hidden"] = true;
    } else {
      o["online"] = s.online;
      if (!s.online && s.last_seen != 0) o["last_seen"] = s.last_seen;
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::string statuses_json(const std::vector<Status>& statuses) {
  return json::serialize(statuses_array(statuses));
}

std::string presence_push(const std::vector<Status>& statuses) {
  return json::serialize(
      json::object{{"type", "presence"}, {"presence", statuses_array(statuses)}});
}

// One subscribe in flight: visibility checks, then status lookups, then the answer. Each
// step's callbacks write only their own Ask; the last one to finish starts the next step.
struct PresenceHub::Subscribe {
  struct Ask {
    std::string user;
    uint64_t serial = 0;  // the subscription this request made or found
    uint64_t gen = 0;     // the visibility check to ask for; 0 = already known
    bool visible = false;
    bool need_status = false;  // visible, and the hub knows no status for it yet
    View status;               // visible: what to answer
  };
  uint64_t conn_id = 0;
  std::string watcher;
  std::vector<std::string> asked;  // as asked, duplicates included
  std::vector<Ask> asks;           // each user once
  std::function<void(Result<std::vector<Status>>)> done;
  std::atomic<size_t> remaining{0};
};

PresenceHub::PresenceHub(Presence& presence, HubOptions opts, HubHooks hooks,
                         boost::asio::any_io_executor timer_executor)
    : presence_(presence), opts_(opts), hooks_(std::move(hooks)), timer_(timer_executor) {}

PresenceHub::~PresenceHub() { stop(); }

void PresenceHub::start() {
  std::lock_guard lock(timer_mu_);
  stopped_ = false;
  arm();
}

void PresenceHub::stop() {
  std::lock_guard lock(timer_mu_);
  stopped_ = true;
  timer_.cancel();
}

void PresenceHub::arm() {
  if (stopped_) return;
  timer_.expires_after(opts_.batch);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    flush();
    std::lock_guard lock(timer_mu_);
    arm();
  });
}

PresenceHub::View PresenceHub::view_of(const Status& s) {
  return View{false, s.online, s.online ? 0 : s.last_seen};
}

PresenceHub::View PresenceHub::want(const Watch& w, const Target& t) {
  if (!w.visible || !t.latest) return View{};
  return *t.latest;
}

void PresenceHub::mark(uint64_t conn_id, Conn& c, const std::string& target, Watch& w) {
  if (!w.queued) {
    w.queued = true;
    c.dirty.push_back(target);
  }
  if (!c.listed) {
    c.listed = true;
    dirty_conns_.push_back(conn_id);
  }
}

void PresenceHub::mark_watchers(const std::string& target, Target& t) {
  for (uint64_t conn_id : t.conns) {
    auto cit = conns_.find(conn_id);
    if (cit == conns_.end()) continue;
    auto wit = cit->second.watches.find(target);
    if (wit == cit->second.watches.end()) continue;
    if (wit->second.answered && wit->second.visible)
      mark(conn_id, cit->second, target, wit->second);
  }
}

PresenceHub::Watch* PresenceHub::find_watch(uint64_t conn_id, const std::string& target,
                                            uint64_t serial) {
  auto cit = conns_.find(conn_id);
  if (cit == conns_.end()) return nullptr;
  auto wit = cit->second.watches.find(target);
  if (wit == cit->second.watches.end() || wit->second.serial != serial) return nullptr;
  return &wit->second;
}

void PresenceHub::unlink(uint64_t conn_id, const std::string& target) {
  auto it = targets_.find(target);
  if (it == targets_.end()) return;
  it->second.conns.erase(conn_id);
  if (it->second.conns.empty()) targets_.erase(it);
}

void PresenceHub::resolve(std::vector<std::string> users,
                          std::function<void(std::vector<View>)> cb) {
  struct Lookup {
    std::vector<View> views;
    std::atomic<size_t> remaining{0};
    std::function<void(std::vector<View>)> cb;
  };
  auto names = users;
  presence_.status(std::move(users), [this, names = std::move(names),
                                      cb = std::move(cb)](Result<std::vector<Status>> r) mutable {
    auto l = std::make_shared<Lookup>();
    l->cb = std::move(cb);
    // Presence down (or a bad answer): as if it knew nobody; the store still has last_seen.
    l->views.assign(names.size(), View{false, false, 0});
    if (r && r->size() == names.size())
      for (size_t i = 0; i < names.size(); ++i) l->views[i] = view_of(r.value()[i]);
    std::vector<size_t> unknown;
    if (hooks_.last_seen)
      for (size_t i = 0; i < names.size(); ++i)
        if (!l->views[i].online && l->views[i].last_seen == 0) unknown.push_back(i);
    l->remaining = unknown.size() + 1;  // +1: this loop
    for (size_t i : unknown)
      hooks_.last_seen(names[i], [l, i](int64_t last_seen) {
        l->views[i].last_seen = last_seen;
        if (l->remaining.fetch_sub(1) == 1) l->cb(std::move(l->views));
      });
    if (l->remaining.fetch_sub(1) == 1) l->cb(std::move(l->views));
  });
}

void PresenceHub::learned(const std::string& user, View v) {
  std::lock_guard lock(mu_);
  auto it = targets_.find(user);
  if (it == targets_.end()) return;
  it->second.resolving = false;
  if (it->second.latest) return;  // on_change was first, and is newer
  it->second.latest = v;
  mark_watchers(user, it->second);
}

void PresenceHub::subscribe(std::shared_ptr<net::Transport> conn, const std::string& watcher,
                            std::vector<std::string> users,
                            std::function<void(Result<std::vector<Status>>)> done) {
  auto sub = std::make_shared<Subscribe>();
  sub->conn_id = conn->id();
  sub->done = std::move(done);
  {
    std::unordered_set<std::string> seen;
    for (const auto& u : users)
      if (seen.insert(u).second) sub->asks.emplace_back().user = u;
  }
  sub->asked = std::move(users);
  bool too_large = false;
  {
    std::lock_guard lock(mu_);
    auto [cit, created] = conns_.try_emplace(sub->conn_id);
    Conn& c = cit->second;
    if (created) {
      c.transport = std::move(conn);
      c.watcher = watcher;
    }
    sub->watcher = c.watcher;
    size_t fresh = std::count_if(sub->asks.begin(), sub->asks.end(),
                                 [&](const auto& a) { return !c.watches.contains(a.user); });
    if (c.watches.size() + fresh > opts_.max_subscriptions) {
      too_large = true;
      if (created) conns_.erase(cit);
    } else {
      for (auto& a : sub->asks) {
        auto [wit, added] = c.watches.try_emplace(a.user);
        Watch& w = wit->second;
        if (added) {
          w.serial = w.gen = next_serial_++;
          targets_[a.user].conns.insert(sub->conn_id);
          ++subscriptions_;
          if (a.user == c.watcher) {  // your own presence: always, whatever the hook says
            w.visible = true;
            w.applied = std::numeric_limits<uint64_t>::max();
          }
        }
        a.serial = w.serial;
        if (w.applied != 0)
          a.visible = w.visible;  // cached until visibility_changed
        else
          a.gen = w.gen;
      }
    }
  }
  if (too_large)
    return sub->done(Error{
        Errc::too_large,
        fmt::format("at most {} presence subscriptions per connection", opts_.max_subscriptions)});
  check_visibility(std::move(sub));
}

void PresenceHub::check_visibility(std::shared_ptr<Subscribe> sub) {
  size_t n =
      std::count_if(sub->asks.begin(), sub->asks.end(), [](const auto& a) { return a.gen != 0; });
  if (n == 0 || !hooks_.visible) {
    for (auto& a : sub->asks)
      if (a.gen != 0) a.visible = true;
    return resolve_statuses(std::move(sub));
  }
  sub->remaining = n + 1;  // +1: this loop, so that no callback starts the next step early
  for (size_t i = 0; i < sub->asks.size(); ++i) {
    if (sub->asks[i].gen == 0) continue;
    hooks_.visible(sub->watcher, sub->asks[i].user, [this, sub, i](bool visible) {
      sub->asks[i].visible = visible;
      if (sub->remaining.fetch_sub(1) == 1) resolve_statuses(sub);
    });
  }
  if (sub->remaining.fetch_sub(1) == 1) resolve_statuses(std::move(sub));
}

void PresenceHub::resolve_statuses(std::shared_ptr<Subscribe> sub) {
  size_t n = 0;
  {
    std::lock_guard lock(mu_);
    for (auto& a : sub->asks) {
      Watch* w = find_watch(sub->conn_id, a.user, a.serial);
      if (!w) {
        a.need_status = a.visible;
        continue;
      }
      if (a.gen != 0 && a.gen >= w->applied) {
        w->visible = a.visible;
        w->applied = a.gen;
      }
      a.visible = w->visible;  // a newer check may have answered first
      const Target& t = targets_.at(a.user);
      a.need_status = a.visible && !t.latest;
      if (a.visible && t.latest) a.status = *t.latest;
      if (a.need_status) ++n;
    }
  }
  if (n == 0) return finish(std::move(sub));
  std::vector<size_t> asked;
  std::vector<std::string> users;
  asked.reserve(n);
  users.reserve(n);
  for (size_t i = 0; i < sub->asks.size(); ++i) {
    if (!sub->asks[i].need_status) continue;
    asked.push_back(i);
    users.push_back(sub->asks[i].user);
  }
  resolve(std::move(users),
          [this, sub = std::move(sub), asked = std::move(asked)](std::vector<View> views) {
            for (size_t j = 0; j < asked.size(); ++j) sub->asks[asked[j]].status = views[j];
            finish(sub);
          });
}

void PresenceHub::finish(std::shared_ptr<Subscribe> sub) {
  std::unordered_map<std::string, View> answer;
  {
    std::lock_guard lock(mu_);
    for (auto& a : sub->asks) {
      Watch* w = find_watch(sub->conn_id, a.user, a.serial);
      if (!w) {  // unsubscribed meanwhile: answer what was found
        answer[a.user] = a.visible ? a.status : View{};
        continue;
      }
      Target& t = targets_.at(a.user);
      if (a.need_status && !t.latest) {
        t.latest = a.status;
        mark_watchers(a.user, t);
      }
      w->sent = want(*w, t);
      w->answered = true;
      answer[a.user] = w->sent;
    }
  }
  std::vector<Status> out;
  out.reserve(sub->asked.size());
  for (auto& u : sub->asked) {
    const View& v = answer[u];
    out.push_back(Status{std::move(u), v.online, v.last_seen, v.hidden});
  }
  sub->done(std::move(out));
}

void PresenceHub::unsubscribe(uint64_t conn_id, const std::vector<std::string>& users) {
  std::lock_guard lock(mu_);
  auto cit = conns_.find(conn_id);
  if (cit == conns_.end()) return;
  Conn& c = cit->second;
  if (users.empty()) {
    for (const auto& [target, w] : c.watches) unlink(conn_id, target);
    subscriptions_ -= c.watches.size();
    c.watches.clear();
    c.dirty.clear();
  } else {
    for (const auto& u : users) {
      auto wit = c.watches.find(u);
      if (wit == c.watches.end()) continue;
      if (wit->second.queued) std::erase(c.dirty, u);
      c.watches.erase(wit);
      unlink(conn_id, u);
      --subscriptions_;
    }
  }
  if (c.watches.empty()) conns_.erase(cit);  // a stale dirty_conns_ entry is skipped by flush
}

void PresenceHub::remove_connection(uint64_t conn_id) { unsubscribe(conn_id, {}); }

void PresenceHub::on_change(const Status& s, uint64_t version) {
  View v = view_of(s);
  std::lock_guard lock(mu_);
  auto it = targets_.find(s.user);
  if (it == targets_.end()) return;
  if (version != 0) {
    if (version <= it->second.version) return;  // an older transition, come by a slower path
    it->second.version = version;
  }
  it->second.latest = v;
  mark_watchers(s.user, it->second);
}

void PresenceHub::visibility_changed(const std::string& user) {
  struct Check {
    uint64_t conn_id;
    std::string watcher;
    uint64_t serial;
    uint64_t gen;
  };
  std::vector<Check> checks;
  {
    std::lock_guard lock(mu_);
    auto it = targets_.find(user);
    if (it == targets_.end()) return;
    for (uint64_t conn_id : it->second.conns) {
      Conn& c = conns_.at(conn_id);
      if (c.watcher == user) continue;  // always visible to itself
      Watch& w = c.watches.at(user);
      w.gen = next_serial_++;
      checks.push_back(Check{conn_id, c.watcher, w.serial, w.gen});
    }
  }
  for (auto& ch : checks) {
    if (!hooks_.visible) {
      apply_visibility(user, ch.conn_id, ch.serial, ch.gen, true);
      continue;
    }
    hooks_.visible(ch.watcher, user, [this, user, ch](bool visible) {
      apply_visibility(user, ch.conn_id, ch.serial, ch.gen, visible);
    });
  }
}

void PresenceHub::relations_changed(const std::vector<std::string>& users) {
  for (const auto& u : users) visibility_changed(u);
  std::unordered_set<std::string> changed(users.begin(), users.end());
  struct Check {
    std::string watcher;
    std::string target;
    uint64_t conn_id;
    uint64_t serial;
    uint64_t gen;
  };
  std::vector<Check> checks;
  {
    // Membership changes are rare next to messages: one scan of this node's connections.
    std::lock_guard lock(mu_);
    for (auto& [conn_id, c] : conns_) {
      if (!changed.contains(c.watcher)) continue;
      for (auto& [target, w] : c.watches) {
        if (target == c.watcher) continue;
        w.gen = next_serial_++;
        checks.push_back(Check{c.watcher, target, conn_id, w.serial, w.gen});
      }
    }
  }
  for (auto& ch : checks) {
    if (!hooks_.visible) {
      apply_visibility(ch.target, ch.conn_id, ch.serial, ch.gen, true);
      continue;
    }
    hooks_.visible(ch.watcher, ch.target, [this, ch](bool visible) {
      apply_visibility(ch.target, ch.conn_id, ch.serial, ch.gen, visible);
    });
  }
}

void PresenceHub::apply_visibility(const std::string& target, uint64_t conn_id, uint64_t serial,
                                   uint64_t gen, bool visible) {
  bool lookup = false;
  {
    std::lock_guard lock(mu_);
    Watch* w = find_watch(conn_id, target, serial);
    if (!w || gen < w->applied) return;  // gone, or a newer check already answered
    w->visible = visible;
    w->applied = gen;
    Target& t = targets_.at(target);
    if (visible && !t.latest) {
      // Nobody here has seen this user's status yet: look it up; learned() pushes it.
      lookup = !t.resolving;
      t.resolving = true;
    } else if (w->answered) {
      mark(conn_id, conns_.at(conn_id), target, *w);
    }
  }
  if (lookup) resolve({target}, [this, target](std::vector<View> v) { learned(target, v.at(0)); });
}

void PresenceHub::flush() {
  std::vector<std::pair<std::shared_ptr<net::Transport>, std::vector<Status>>> out;
  {
    std::lock_guard lock(mu_);
    for (uint64_t conn_id : dirty_conns_) {
      auto cit = conns_.find(conn_id);
      if (cit == conns_.end() || !cit->second.listed) continue;
      Conn& c = cit->second;
      c.listed = false;
      std::vector<Status> changes;
      for (const auto& target : c.dirty) {
        auto wit = c.watches.find(target);
        if (wit == c.watches.end() || !wit->second.queued) continue;
        Watch& w = wit->second;
        w.queued = false;
        if (!w.answered) continue;
        View v = want(w, targets_.at(target));
        if (v == w.sent) continue;  // back to what the connection has: nothing to say
        w.sent = v;
        changes.push_back(Status{target, v.online, v.last_seen, v.hidden});
      }
      c.dirty.clear();
      if (!changes.empty()) out.emplace_back(c.transport, std::move(changes));
    }
    dirty_conns_.clear();
  }
  for (const auto& [transport, changes] : out)
    transport->send(std::make_shared<const std::string>(presence_push(changes)));
}

size_t PresenceHub::subscription_count() const {
  std::lock_guard lock(mu_);
  return subscriptions_;
}

}  // namespace parley::presence
