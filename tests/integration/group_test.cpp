// Group chats end to end over real sockets (PROTOCOL.md §3.9, §3.4 large groups, §3.6
// after_seq; docs/GROUPS.md; issue 4 "Tests it must have").
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/json_util.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;

// ---------------------------------------------------------------------------------------------
// Helpers

struct Account {
  std::string name;
  std::string token;  // the first device's
};

Account new_account(std::uint16_t port, std::string_view prefix) {
  Account a{unique_username(prefix), {}};
  register_user(port, a.name);
  a.token = login(port, a.name).token;
  return a;
}

json::array users_array(const std::vector<std::string>& users) {
  json::array out;
  for (const auto& u : users) out.emplace_back(u);
  return out;
}

json::object op(std::string_view type, std::int64_t chat_id) {
  return {{"type", type}, {"chat_id", chat_id}};
}
json::object op_user(std::string_view type, std::int64_t chat_id, const std::string& user) {
  return {{"type", type}, {"chat_id", chat_id}, {"user", user}};
}
json::object add_frame(std::int64_t chat_id, const std::vector<std::string>& users) {
  return {{"type", "group_add"}, {"chat_id", chat_id}, {"users", users_array(users)}};
}

// group_create; returns the result (empty after a failure).
json::object create_group(WsClient& c, std::string_view name,
                          const std::vector<std::string>& members) {
  return request_ok(c,
                    {{"type", "group_create"}, {"name", name}, {"members", users_array(members)}});
}
std::int64_t chat_of(const json::object& group_result) {
  return int_field(obj_field(group_result, "chat"), "chat_id");
}

// Sends `request` and expects an error with `code`.
::testing::AssertionResult refused(WsClient& c, json::object request, std::string_view code) {
  const auto text = json::serialize(request);
  auto f = c.request(std::move(request));
  auto r = is_error(f, code);
  if (!r) r << " (request " << text << ")";
  return r;
}

// What a connection learned about one chat, in arrival order: `message` pushes of that chat
// and the ok results of its own sends and group requests (they carry seq, message_id, pts).
struct Seen {
  std::int64_t seq = 0;
  std::optional<std::int64_t> pts;  // absent on large-group pushes
  bool push = false;
  std::string message_id;
  json::object message;  // pushes only
};

std::vector<Seen> seen_in_chat(const WsClient& c, std::int64_t chat_id) {
  std::vector<Seen> out;
  for (const auto& f : c.received()) {
    if (is_push(f)) {
      if (str_field(f, "type") != "message") continue;
      const auto& m = obj_field(f, "message");
      if (int_field(m, "chat_id") != chat_id) continue;
      Seen s;
      s.seq = int_field(m, "seq");
      if (f.contains("pts")) s.pts = int_field(f, "pts");
      s.push = true;
      s.message_id = str_field(m, "message_id");
      s.message = m;
      out.push_back(std::move(s));
    } else if (is_ok(f)) {
      const auto* rv = f.if_contains("result");
      if (rv == nullptr || !rv->is_object()) continue;
      const auto& r = rv->as_object();
      if (!r.contains("seq") || !r.contains("message_id")) continue;
      const auto cid =
          r.contains("chat") ? int_field(obj_field(r, "chat"), "chat_id") : int_field(r, "chat_id");
      if (cid != chat_id) continue;
      Seen s;
      s.seq = int_field(r, "seq");
      s.pts = int_field(r, "pts");
      s.message_id = str_field(r, "message_id");
      out.push_back(std::move(s));
    }
  }
  return out;
}

// Reads frames until the connection has seen `n` entries of the chat (or the timeout).
bool wait_seen(WsClient& c, std::int64_t chat_id, std::size_t n,
               std::chrono::milliseconds timeout = 10s) {
  const auto deadline = WsClient::Clock::now() + timeout;
  while (seen_in_chat(c, chat_id).size() < n) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - WsClient::Clock::now());
    if (left.count() <= 0 || !c.next_frame(left)) return false;
  }
  return true;
}

bool is_str(const json::value* v, std::string_view s) {
  return v != nullptr && v->is_string() && v->as_string() == s;
}

// The first push of a message satisfying `pred` (removes it from the inbox).
std::optional<json::object> wait_message(WsClient& c,
                                         const std::function<bool(const json::object&)>& pred,
                                         std::chrono::milliseconds timeout = 10s) {
  auto f = c.wait_for(
      [&](const WsClient::Frame& fr) {
        const auto* m = fr.if_contains("message");
        return is_push(fr) && is_str(fr.if_contains("type"), "message") && m != nullptr &&
               m->is_object() && pred(m->as_object());
      },
      timeout);
  return f;
}

bool is_event(const json::object& m, std::string_view name) {
  if (!is_str(m.if_contains("kind"), "event")) return false;
  const auto* e = m.if_contains("event");
  return e != nullptr && e->is_object() && is_str(e->as_object().if_contains("event"), name);
}
const json::object& event_of(const json::object& m) { return obj_field(m, "event"); }

bool array_has(const json::array& a, const std::string& s) {
  return std::any_of(a.begin(), a.end(), [&](const json::value& v) { return is_str(&v, s); });
}

// The seqs of a chat that `user` must find in its update log, from the chat's full timeline
// (oldest first, from a member that saw all of it): from each join event through the
// matching removal event, both included (PROTOCOL.md §3.9, GROUPS.md).
std::vector<std::int64_t> expected_log_seqs(const json::array& timeline, const std::string& user) {
  std::vector<std::int64_t> out;
  bool in = false;
  for (const auto& v : timeline) {
    const auto& m = v.as_object();
    const auto seq = int_field(m, "seq");
    bool joins = false;
    bool leaves = false;
    if (is_event(m, "created")) joins = array_has(arr_field(event_of(m), "members"), user);
    if (is_event(m, "members_added")) joins = array_has(arr_field(event_of(m), "users"), user);
    if (is_event(m, "member_removed") || is_event(m, "member_left"))
      leaves = str_field(event_of(m), "user") == user;
    if (is_event(m, "group_deleted")) leaves = in;
    if (joins) in = true;
    if (in) out.push_back(seq);
    if (leaves) in = false;
  }
  return out;
}

// The updates of one chat in a list of sync updates, in order.
std::vector<json::object> updates_of_chat(const json::array& updates, std::int64_t chat_id) {
  std::vector<json::object> out;
  for (const auto& u : updates) {
    const auto& m = obj_field(u.as_object(), "message");
    if (int_field(m, "chat_id") == chat_id) out.push_back(u.as_object());
  }
  return out;
}

::testing::AssertionResult gapless_pts(const json::array& updates, std::int64_t first) {
  std::int64_t want = first;
  for (const auto& u : updates) {
    if (int_field(u.as_object(), "pts") != want)
      return ::testing::AssertionFailure()
             << "expected pts " << want << ", got " << to_string(u) << " in " << to_string(updates);
    ++want;
  }
  return ::testing::AssertionSuccess();
}

// Pages a chat forwards with `after_seq` until has_more is false (per-chat sync, §3.4/§3.6).
json::array history_after(WsClient& c, std::int64_t chat_id, std::int64_t after, int limit) {
  json::array all;
  for (int guard = 0; guard < 1000; ++guard) {
    auto r = request_ok(
        c, {{"type", "history"}, {"chat_id", chat_id}, {"after_seq", after}, {"limit", limit}});
    if (r.empty()) return all;
    const auto& ms = arr_field(r, "messages");
    for (const auto& m : ms) all.push_back(m);
    if (!bool_field(r, "has_more")) return all;
    if (ms.empty()) {
      ADD_FAILURE() << "has_more without messages: " << to_string(r);
      return all;
    }
    after = int_field(ms.back().as_object(), "seq");
  }
  ADD_FAILURE() << "after_seq paging did not end";
  return all;
}

std::vector<std::int64_t> seqs_of(const json::array& messages) {
  std::vector<std::int64_t> out;
  for (const auto& m : messages) out.push_back(int_field(m.as_object(), "seq"));
  return out;
}
std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  for (auto s = first; s <= last; ++s) out.push_back(s);
  return out;
}

// One thread's pipelined sends into a chat.
struct Sender {
  WsClient* ws = nullptr;
  std::string name;
  std::vector<json::object> acks;  // completion order
  std::string error;
};

void run_sends(Sender& s, std::int64_t chat_id, int count, int window) {
  try {
    std::deque<std::int64_t> inflight;
    int sent = 0;
    while (sent < count || !inflight.empty()) {
      while (sent < count && static_cast<int>(inflight.size()) < window) {
        inflight.push_back(s.ws->send_request(send_to_chat_frame(
            chat_id, s.name + " #" + std::to_string(sent), next_client_msg_id())));
        ++sent;
      }
      auto res = s.ws->wait_response(inflight.front());
      if (!res) throw std::runtime_error("no response to a send");
      if (!is_ok(*res)) throw std::runtime_error("send failed: " + to_string(*res));
      s.acks.push_back(obj_field(*res, "result"));
      inflight.pop_front();
    }
  } catch (const std::exception& e) {
    s.error = e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Small groups on a server with the default configuration.

class GroupTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<ServerProcess>(); }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "parleyd did not start"; }
  void TearDown() override { EXPECT_TRUE(server_->alive()) << "parleyd died during the test"; }
  static std::uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ServerProcess> server_;
};

// 4 senders × 25 messages and an owner renaming the group meanwhile; 4 members with 2
// devices each. Every device sees seq 1..N (events and messages) once, in order, at pts
// 1..N of its user's log; sync from 0 and history agree.
TEST_F(GroupTest, ConcurrentSendersEveryDeviceSeesTheSameGaplessSequence) {
  constexpr int kPerSender = 25;
  constexpr int kRenames = 5;
  std::vector<Account> users;
  for (const char* p : {"owner", "m1", "m2", "m3"}) users.push_back(new_account(port(), p));
  std::vector<std::unique_ptr<WsClient>> devices;  // 2 per user: [2u] and [2u+1]
  for (const auto& u : users) {
    devices.push_back(connect_authed(port(), u.token));
    devices.push_back(connect_authed(port(), login(port(), u.name).token));
  }
  auto created =
      create_group(*devices[0], "concurrent", {users[1].name, users[2].name, users[3].name});
  ASSERT_FALSE(created.empty());
  const auto chat_id = chat_of(created);
  EXPECT_EQ(int_field(created, "seq"), 1);
  EXPECT_EQ(int_field(created, "pts"), 1);
  EXPECT_EQ(int_field(obj_field(created, "chat"), "member_count"), 4);
  EXPECT_FALSE(bool_field(obj_field(created, "chat"), "large"));

  // Senders: the first device of every user; the owner's second device renames.
  std::vector<Sender> senders(users.size());
  for (std::size_t u = 0; u < users.size(); ++u) {
    senders[u].ws = devices[2 * u].get();
    senders[u].name = users[u].name;
  }
  std::vector<json::object> rename_results;
  std::string rename_error;
  std::latch go(static_cast<std::ptrdiff_t>(users.size()) + 1);
  std::vector<std::thread> threads;
  for (auto& s : senders) {
    threads.emplace_back([&, sp = &s] {
      go.arrive_and_wait();
      run_sends(*sp, chat_id, kPerSender, 8);
    });
  }
  threads.emplace_back([&] {
    go.arrive_and_wait();
    try {
      for (int i = 0; i < kRenames; ++i) {
        auto res = devices[1]->request({{"type", "group_rename"},
                                        {"chat_id", chat_id},
                                        {"name", "name " + std::to_string(i)}});
        if (!is_ok(res)) throw std::runtime_error("rename failed: " + to_string(res));
        rename_results.push_back(obj_field(res, "result"));
      }
    } catch (const std::exception& e) {
      rename_error = e.what();
    }
  });
  for (auto& t : threads) t.join();
  for (const auto& s : senders) ASSERT_TRUE(s.error.empty()) << s.error;
  ASSERT_TRUE(rename_error.empty()) << rename_error;

  const std::int64_t total = 1 + kPerSender * static_cast<std::int64_t>(users.size()) + kRenames;
  // Every seq was assigned once.
  std::map<std::int64_t, std::string> id_by_seq{{1, str_field(created, "message_id")}};
  auto record = [&](const json::object& r) {
    EXPECT_TRUE(id_by_seq.emplace(int_field(r, "seq"), str_field(r, "message_id")).second)
        << "seq " << int_field(r, "seq") << " assigned twice";
  };
  for (const auto& s : senders)
    for (const auto& a : s.acks) record(a);
  for (const auto& r : rename_results) record(r);
  ASSERT_EQ(static_cast<std::int64_t>(id_by_seq.size()), total);
  EXPECT_EQ(id_by_seq.rbegin()->first, total);

  // Every device: pushes + own results cover seq 1..total in arrival order, at pts == seq
  // (the group is the only chat of these users).
  for (std::size_t d = 0; d < devices.size(); ++d) {
    SCOPED_TRACE("device " + std::to_string(d) + " of " + users[d / 2].name);
    ASSERT_TRUE(wait_seen(*devices[d], chat_id, static_cast<std::size_t>(total)))
        << "saw only " << seen_in_chat(*devices[d], chat_id).size() << " of " << total;
    auto seen = seen_in_chat(*devices[d], chat_id);
    ASSERT_EQ(static_cast<std::int64_t>(seen.size()), total);
    std::int64_t renames_seen = 0;
    for (std::int64_t i = 0; i < total; ++i) {
      const auto& s = seen[static_cast<std::size_t>(i)];
      EXPECT_EQ(s.seq, i + 1) << "out of order or with a gap at arrival " << i;
      ASSERT_TRUE(s.pts.has_value());
      EXPECT_EQ(*s.pts, i + 1) << "pts out of order at arrival " << i;
      EXPECT_EQ(s.message_id, id_by_seq[s.seq]);
      if (s.push && is_event(s.message, "renamed")) ++renames_seen;
      if (s.push && !is_event(s.message, "renamed") && !is_event(s.message, "created")) {
        EXPECT_EQ(str_field(s.message, "kind"), "text");
        EXPECT_FALSE(s.message.contains("to")) << "a group message has no `to`";
      }
    }
    // The owner's renaming connection learned its renames from its own results.
    EXPECT_EQ(renames_seen, d == 1 ? 0 : kRenames);
  }

  // Sync from 0 and history agree, for every user.
  for (std::size_t u = 0; u < users.size(); ++u) {
    SCOPED_TRACE(users[u].name);
    auto updates = sync_all(*devices[2 * u + 1], 0, 40);
    ASSERT_EQ(static_cast<std::int64_t>(updates.size()), total);
    EXPECT_TRUE(gapless_pts(updates, 1));
    for (std::int64_t i = 0; i < total; ++i) {
      const auto& m = obj_field(updates[static_cast<std::size_t>(i)].as_object(), "message");
      EXPECT_EQ(int_field(m, "chat_id"), chat_id);
      EXPECT_EQ(int_field(m, "seq"), i + 1);
      EXPECT_EQ(str_field(m, "message_id"), id_by_seq[i + 1]);
    }
    auto history = full_history(*devices[2 * u + 1], chat_id, 30);
    ASSERT_EQ(seqs_of(history), range(1, total));
    for (const auto& m : history)
      EXPECT_EQ(str_field(m.as_object(), "message_id"), id_by_seq[int_field(m.as_object(), "seq")]);
  }
  auto info = request_ok(*devices[6], op("group_info", chat_id));
  EXPECT_EQ(str_field(obj_field(info, "chat"), "name"), "name 4");
  EXPECT_EQ(int_field(obj_field(info, "chat"), "last_seq"), total);
}

// One member sends continuously while the owner removes and re-adds another member and adds
// new ones. Afterwards every affected user's log holds exactly the group's messages from
// each of its joins through its removal, and history shows no more (full_history off);
// with full_history on, a new member pages history from seq 1.
TEST_F(GroupTest, AddAndRemoveRacingWithSends) {
  auto owner = new_account(port(), "owner");
  auto sender = new_account(port(), "sender");
  auto victim = new_account(port(), "victim");
  std::vector<Account> newcomers;
  for (int i = 0; i < 3; ++i) newcomers.push_back(new_account(port(), "newcomer"));
  auto late = new_account(port(), "late");

  auto o = connect_authed(port(), owner.token);
  auto s = connect_authed(port(), sender.token);
  auto v_online = connect_authed(port(), victim.token);  // watches its pushes throughout
  auto created = create_group(*o, "racing", {sender.name, victim.name});
  ASSERT_FALSE(created.empty());
  const auto chat_id = chat_of(created);

  std::atomic<int> acked{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> sender_done{false};
  Sender sd{s.get(), sender.name, {}, {}};
  std::thread sending([&] {
    try {
      std::deque<std::int64_t> inflight;
      int sent = 0;
      while (((!stop || sent < 40) && sent < 400) || !inflight.empty()) {
        while (((!stop || sent < 40) && sent < 400) && inflight.size() < 4) {
          inflight.push_back(sd.ws->send_request(
              send_to_chat_frame(chat_id, "race " + std::to_string(sent), next_client_msg_id())));
          ++sent;
        }
        auto res = sd.ws->wait_response(inflight.front());
        if (!res) throw std::runtime_error("no response to a send");
        if (!is_ok(*res)) throw std::runtime_error("send failed: " + to_string(*res));
        sd.acks.push_back(obj_field(*res, "result"));
        inflight.pop_front();
        ++acked;
      }
    } catch (const std::exception& e) {
      sd.error = e.what();
    }
    sender_done = true;
  });
  // The victim sends too, one at a time: each send is either before its removal (ok) or
  // after it (forbidden), never anything else.
  std::vector<std::int64_t> victim_seqs;
  int victim_refused = 0;
  std::string victim_error;
  std::thread victim_sending([&] {
    try {
      for (int i = 0; i < 150 && !stop; ++i) {
        auto res = v_online->request(
            send_to_chat_frame(chat_id, "victim " + std::to_string(i), next_client_msg_id()));
        if (is_ok(res)) {
          victim_seqs.push_back(int_field(obj_field(res, "result"), "seq"));
        } else if (error_code_of(res) == "forbidden") {
          ++victim_refused;
        } else {
          throw std::runtime_error("unexpected answer: " + to_string(res));
        }
      }
    } catch (const std::exception& e) {
      victim_error = e.what();
    }
  });
  std::string admin_error;
  std::thread admin([&] {
    auto wait_acks = [&](int more) {
      const int target = acked + more;
      while (acked < target && !sender_done) std::this_thread::yield();
    };
    try {
      std::vector<json::object> ops{op_user("group_remove", chat_id, victim.name),
                                    add_frame(chat_id, {victim.name}),
                                    op_user("group_remove", chat_id, victim.name),
                                    add_frame(chat_id, {victim.name}),
                                    add_frame(chat_id, {newcomers[0].name}),
                                    op_user("group_remove", chat_id, victim.name),
                                    add_frame(chat_id, {newcomers[1].name}),
                                    add_frame(chat_id, {newcomers[2].name}),
                                    add_frame(chat_id, {victim.name}),
                                    op_user("group_remove", chat_id, victim.name)};
      for (auto& request : ops) {
        wait_acks(3);
        auto res = o->request(request);
        if (!is_ok(res)) throw std::runtime_error("group op failed: " + to_string(res));
      }
      wait_acks(3);
    } catch (const std::exception& e) {
      admin_error = e.what();
    }
    stop = true;
  });
  admin.join();
  sending.join();
  victim_sending.join();
  ASSERT_TRUE(victim_error.empty()) << victim_error;
  ASSERT_TRUE(admin_error.empty()) << admin_error;
  ASSERT_TRUE(sd.error.empty()) << sd.error;

  // The owner was a member throughout: its history is the whole timeline, gapless.
  const auto timeline = full_history(*o, chat_id);
  const auto last_seq = static_cast<std::int64_t>(timeline.size());
  ASSERT_EQ(seqs_of(timeline), range(1, last_seq));
  EXPECT_EQ(last_seq, 1 + static_cast<std::int64_t>(sd.acks.size() + victim_seqs.size()) + 10);
  {
    // The victim's accepted sends lie inside its memberships (strictly: join and removal
    // are events), and are its messages.
    const auto member_seqs = expected_log_seqs(timeline, victim.name);
    for (auto seq : victim_seqs) {
      EXPECT_TRUE(std::binary_search(member_seqs.begin(), member_seqs.end(), seq))
          << "the victim's send got seq " << seq << " outside its membership";
      const auto& m = timeline[static_cast<std::size_t>(seq - 1)].as_object();
      EXPECT_EQ(str_field(m, "sender"), victim.name);
      EXPECT_EQ(str_field(m, "kind"), "text");
    }
  }

  auto check_user = [&](const Account& who, bool removed_at_end) {
    SCOPED_TRACE(who.name);
    const auto want = expected_log_seqs(timeline, who.name);
    ASSERT_FALSE(want.empty());
    auto c = connect_authed(port(), login(port(), who.name).token);
    auto updates = sync_all(*c, 0, 25);
    EXPECT_TRUE(gapless_pts(updates, 1));
    std::vector<std::int64_t> got;
    for (const auto& u : updates_of_chat(updates, chat_id))
      got.push_back(int_field(obj_field(u, "message"), "seq"));
    EXPECT_EQ(got, want) << "the log must hold the group's messages from each join event "
                            "through the removal event, and nothing else";
    // History: from the last join to the removal (or the end), never before or past it.
    std::int64_t last_join = 0;
    for (const auto& m : timeline) {
      const auto& mo = m.as_object();
      if ((is_event(mo, "members_added") &&
           array_has(arr_field(event_of(mo), "users"), who.name)) ||
          (is_event(mo, "created") && array_has(arr_field(event_of(mo), "members"), who.name)))
        last_join = int_field(mo, "seq");
    }
    const auto history = full_history(*c, chat_id, 16);
    const std::int64_t until = removed_at_end ? want.back() : last_seq;
    EXPECT_EQ(seqs_of(history), range(last_join, until));
    auto before_join =
        request_ok(*c, {{"type", "history"}, {"chat_id", chat_id}, {"before_seq", last_join}});
    EXPECT_TRUE(arr_field(before_join, "messages").empty()) << to_string(before_join);
    EXPECT_FALSE(bool_field(before_join, "has_more"));
    auto past = request_ok(*c, {{"type", "history"}, {"chat_id", chat_id}, {"after_seq", until}});
    EXPECT_TRUE(arr_field(past, "messages").empty()) << to_string(past);
    // Only a removed member is not a member any more.
    if (removed_at_end) {
      EXPECT_TRUE(refused(*c, op("group_info", chat_id), "forbidden"));
      EXPECT_TRUE(refused(*c, send_to_chat_frame(chat_id, "still here?", next_client_msg_id()),
                          "forbidden"));
    }
  };
  check_user(sender, false);
  check_user(victim, true);
  for (const auto& n : newcomers) check_user(n, false);

  // The victim's online device was pushed exactly what its log holds, in the same order.
  {
    const auto want = expected_log_seqs(timeline, victim.name);
    ASSERT_TRUE(wait_seen(*v_online, chat_id, want.size()));
    std::vector<std::int64_t> pushed;
    for (const auto& seen : seen_in_chat(*v_online, chat_id)) pushed.push_back(seen.seq);
    EXPECT_EQ(pushed, want);
    v_online->poll();
    EXPECT_EQ(seen_in_chat(*v_online, chat_id).size(), want.size())
        << "pushed more than the log holds";
  }

  // full_history on: a member added afterwards pages the whole history from seq 1.
  auto settings =
      request_ok(*o, {{"type", "group_settings"}, {"chat_id", chat_id}, {"full_history", true}});
  EXPECT_TRUE(bool_field(obj_field(settings, "chat"), "full_history"));
  auto added = request_ok(*o, add_frame(chat_id, {late.name}));
  const auto join_seq = int_field(added, "seq");
  EXPECT_EQ(join_seq, last_seq + 2);
  auto l = connect_authed(port(), late.token);
  auto l_history = full_history(*l, chat_id, 7);
  ASSERT_EQ(seqs_of(l_history), range(1, join_seq));
  for (std::size_t i = 0; i < timeline.size(); ++i)
    EXPECT_EQ(str_field(l_history[i].as_object(), "message_id"),
              str_field(timeline[i].as_object(), "message_id"));
  EXPECT_TRUE(is_event(l_history.back().as_object(), "members_added"));
  // Its log starts at its join: the log is not back-filled.
  auto l_updates = sync_all(*l, 0);
  ASSERT_EQ(l_updates.size(), 1u) << to_string(l_updates);
  EXPECT_EQ(int_field(obj_field(l_updates[0].as_object(), "message"), "seq"), join_seq);
}

// The role table of PROTOCOL.md §3.9, for non-members, members, admins and the owner.
TEST_F(GroupTest, PermissionsFollowTheRoleTable) {
  auto owner = new_account(port(), "owner");
  auto admin = new_account(port(), "admin");
  auto admin2 = new_account(port(), "admin2");
  auto member = new_account(port(), "member");
  auto member2 = new_account(port(), "member2");
  auto outsider = new_account(port(), "outsider");
  auto o = connect_authed(port(), owner.token);
  auto a = connect_authed(port(), admin.token);
  auto a2 = connect_authed(port(), admin2.token);
  auto m = connect_authed(port(), member.token);
  auto m2 = connect_authed(port(), member2.token);
  auto x = connect_authed(port(), outsider.token);

  auto created = create_group(*o, "roles", {admin.name, admin2.name, member.name, member2.name});
  ASSERT_FALSE(created.empty());
  const auto chat_id = chat_of(created);
  request_ok(*o, op_user("group_promote", chat_id, admin.name));
  request_ok(*o, op_user("group_promote", chat_id, admin2.name));
  send_to_chat_ok(*m, chat_id, "hello");
  const auto last_seq_before =
      int_field(obj_field(request_ok(*o, op("group_info", chat_id)), "chat"), "last_seq");  // 4

  auto rename = [&](std::string_view name) {
    return json::object{{"type", "group_rename"}, {"chat_id", chat_id}, {"name", name}};
  };
  auto settings =
      json::object{{"type", "group_settings"}, {"chat_id", chat_id}, {"full_history", true}};

  {
    SCOPED_TRACE("a non-member");
    EXPECT_TRUE(
        refused(*x, send_to_chat_frame(chat_id, "let me in", next_client_msg_id()), "forbidden"));
    EXPECT_TRUE(refused(*x, {{"type", "history"}, {"chat_id", chat_id}}, "forbidden"));
    EXPECT_TRUE(
        refused(*x, {{"type", "history"}, {"chat_id", chat_id}, {"before_seq", 3}}, "forbidden"));
    EXPECT_TRUE(
        refused(*x, {{"type", "history"}, {"chat_id", chat_id}, {"after_seq", 0}}, "forbidden"));
    EXPECT_TRUE(refused(*x, add_frame(chat_id, {outsider.name}), "forbidden"));
    EXPECT_TRUE(refused(*x, add_frame(chat_id, {unique_username("nobody")}), "forbidden"));
    EXPECT_TRUE(refused(*x, op("group_info", chat_id), "forbidden"));
    EXPECT_TRUE(refused(*x, rename("mine"), "forbidden"));
    EXPECT_TRUE(refused(*x, op_user("group_remove", chat_id, member.name), "forbidden"));
    EXPECT_TRUE(refused(*x, op("group_leave", chat_id), "forbidden"));
    EXPECT_TRUE(refused(*x, op("group_delete", chat_id), "forbidden"));
  }
  {
    SCOPED_TRACE("a plain member");
    EXPECT_TRUE(refused(*m, rename("mine"), "forbidden"));
    EXPECT_TRUE(refused(*m, add_frame(chat_id, {outsider.name}), "forbidden"));
    EXPECT_TRUE(refused(*m, op_user("group_remove", chat_id, member2.name), "forbidden"));
    EXPECT_TRUE(refused(*m, op_user("group_remove", chat_id, admin.name), "forbidden"));
    EXPECT_TRUE(refused(*m, op_user("group_promote", chat_id, member2.name), "forbidden"));
    EXPECT_TRUE(refused(*m, op_user("group_demote", chat_id, admin.name), "forbidden"));
    EXPECT_TRUE(refused(*m, op_user("group_transfer", chat_id, member.name), "forbidden"));
    EXPECT_TRUE(refused(*m, settings, "forbidden"));
    EXPECT_TRUE(refused(*m, op("group_delete", chat_id), "forbidden"));
  }
  {
    SCOPED_TRACE("an admin");
    EXPECT_TRUE(refused(*a, op_user("group_remove", chat_id, admin2.name), "forbidden"));
    EXPECT_TRUE(refused(*a, op_user("group_remove", chat_id, owner.name), "forbidden"));
    EXPECT_TRUE(refused(*a, op_user("group_promote", chat_id, member.name), "forbidden"));
    EXPECT_TRUE(refused(*a, op_user("group_demote", chat_id, admin2.name), "forbidden"));
    EXPECT_TRUE(refused(*a, op_user("group_transfer", chat_id, admin.name), "forbidden"));
    EXPECT_TRUE(refused(*a, op("group_delete", chat_id), "forbidden"));
  }
  // Nothing above changed the group: no event was appended.
  auto info = request_ok(*m, op("group_info", chat_id));
  EXPECT_EQ(int_field(obj_field(info, "chat"), "last_seq"), last_seq_before);
  EXPECT_EQ(str_field(obj_field(info, "chat"), "name"), "roles");
  EXPECT_EQ(int_field(obj_field(info, "chat"), "member_count"), 5);
  std::map<std::string, std::string> roles;
  for (const auto& e : arr_field(obj_field(info, "chat"), "members"))
    roles[str_field(e.as_object(), "user")] = str_field(e.as_object(), "role");
  EXPECT_EQ(roles, (std::map<std::string, std::string>{{owner.name, "owner"},
                                                       {admin.name, "admin"},
                                                       {admin2.name, "admin"},
                                                       {member.name, "member"},
                                                       {member2.name, "member"}}));
  // Members may read.
  EXPECT_EQ(full_history(*m, chat_id).size(), static_cast<std::size_t>(last_seq_before));

  // What admins may do: rename, add, remove a member, settings.
  request_ok(*a, rename("renamed by admin"));
  request_ok(*a, add_frame(chat_id, {outsider.name}));
  auto removed = request_ok(*a, op_user("group_remove", chat_id, outsider.name));
  const auto removed_seq = int_field(removed, "seq");
  request_ok(*a, settings);
  // A removed member reads up to its removal, no further, and is no member any more.
  auto x_history = full_history(*x, chat_id);
  ASSERT_FALSE(x_history.empty());
  EXPECT_EQ(int_field(x_history.back().as_object(), "seq"), removed_seq);
  EXPECT_TRUE(refused(*x, op("group_info", chat_id), "forbidden"));
  EXPECT_TRUE(refused(*x, send_to_chat_frame(chat_id, "back?", next_client_msg_id()), "forbidden"));
  EXPECT_TRUE(refused(*x, add_frame(chat_id, {outsider.name}), "forbidden"));

  // The owner cannot leave before handing over; afterwards the old owner can.
  EXPECT_TRUE(refused(*o, op("group_leave", chat_id), "forbidden"));
  auto transferred = request_ok(*o, op_user("group_transfer", chat_id, admin.name));
  ASSERT_FALSE(transferred.empty());
  {
    auto push = wait_message(*m, [&](const json::object& msg) {
      return int_field(msg, "chat_id") == chat_id && is_event(msg, "owner_changed");
    });
    ASSERT_TRUE(push.has_value());
    const auto& ev = event_of(obj_field(*push, "message"));
    EXPECT_EQ(str_field(ev, "by"), owner.name);
    EXPECT_EQ(str_field(ev, "user"), admin.name);
  }
  // The old owner is an admin now: no owner actions.
  EXPECT_TRUE(refused(*o, op_user("group_promote", chat_id, member.name), "forbidden"));
  EXPECT_TRUE(refused(*o, op_user("group_remove", chat_id, admin.name), "forbidden"));
  EXPECT_TRUE(refused(*a, op("group_leave", chat_id), "forbidden")) << "the new owner";
  auto left = request_ok(*o, op("group_leave", chat_id));
  EXPECT_FALSE(left.empty());
  EXPECT_TRUE(refused(*o, op("group_info", chat_id), "forbidden"));
  // A member leaves freely.
  request_ok(*m2, op("group_leave", chat_id));

  info = request_ok(*a, op("group_info", chat_id));
  roles.clear();
  for (const auto& e : arr_field(obj_field(info, "chat"), "members"))
    roles[str_field(e.as_object(), "user")] = str_field(e.as_object(), "role");
  EXPECT_EQ(roles, (std::map<std::string, std::string>{
                       {admin.name, "owner"}, {admin2.name, "admin"}, {member.name, "member"}}));
  EXPECT_EQ(int_field(obj_field(info, "chat"), "member_count"), 3);
  // The new owner now has owner powers: remove an admin.
  request_ok(*a, op_user("group_remove", chat_id, admin2.name));
  // And the plain member saw every event in order.
  auto m_history = full_history(*m, chat_id);
  EXPECT_EQ(seqs_of(m_history), range(1, int_field(obj_field(info, "chat"), "last_seq") + 1));
}

// A member without a connection misses messages and membership changes; it comes back with
// its saved pts and syncs them in order, with gapless pts (also across another chat).
TEST_F(GroupTest, OfflineMemberCatchesUpFromItsSavedPts) {
  auto owner = new_account(port(), "owner");
  auto off = new_account(port(), "offline");
  auto peer = new_account(port(), "peer");
  auto joiner = new_account(port(), "joiner");
  auto o = connect_authed(port(), owner.token);
  auto p = connect_authed(port(), peer.token);

  std::int64_t saved_pts = 0;
  std::int64_t chat_id = 0;
  {
    auto c = connect_authed(port(), off.token);
    auto created = create_group(*o, "offline", {off.name, peer.name});
    ASSERT_FALSE(created.empty());
    chat_id = chat_of(created);
    auto push = c->next_push();
    ASSERT_TRUE(push.has_value());
    EXPECT_TRUE(is_event(obj_field(*push, "message"), "created")) << to_string(*push);
    saved_pts = int_field(*push, "pts");
    EXPECT_EQ(saved_pts, 1);
    c->close();
  }

  // While it is away.
  for (int i = 0; i < 4; ++i) send_to_chat_ok(*o, chat_id, "o-" + std::to_string(i));
  request_ok(*o, {{"type", "group_rename"}, {"chat_id", chat_id}, {"name", "renamed"}});
  request_ok(*o, add_frame(chat_id, {joiner.name}));
  send_ok(*p, off.name, "a direct message in between");
  for (int i = 0; i < 3; ++i) send_to_chat_ok(*p, chat_id, "p-" + std::to_string(i));
  request_ok(*o, op_user("group_remove", chat_id, peer.name));
  request_ok(*o, op_user("group_promote", chat_id, off.name));
  send_to_chat_ok(*o, chat_id, "last");

  auto c = connect_authed(port(), login(port(), off.name).token);
  const auto timeline = full_history(*o, chat_id);
  const auto last_seq = static_cast<std::int64_t>(timeline.size());
  ASSERT_EQ(seqs_of(timeline), range(1, last_seq));
  ASSERT_EQ(last_seq, 13);

  // Sync in small pages from the saved cursor.
  auto updates = sync_all(*c, saved_pts, 4);
  ASSERT_EQ(updates.size(), static_cast<std::size_t>(last_seq - 1 + 1)) << to_string(updates);
  EXPECT_TRUE(gapless_pts(updates, saved_pts + 1));
  auto group_updates = updates_of_chat(updates, chat_id);
  ASSERT_EQ(group_updates.size(), static_cast<std::size_t>(last_seq - 1));
  for (std::size_t i = 0; i < group_updates.size(); ++i) {
    const auto& msg = obj_field(group_updates[i], "message");
    const auto& want = timeline[i + 1].as_object();
    EXPECT_EQ(int_field(msg, "seq"), int_field(want, "seq"));
    EXPECT_EQ(str_field(msg, "message_id"), str_field(want, "message_id"));
  }
  // The direct message is in its place: after the join event, before the peer's messages.
  const auto& direct = obj_field(updates[6].as_object(), "message");
  EXPECT_NE(int_field(direct, "chat_id"), chat_id) << to_string(updates);
  EXPECT_EQ(str_field(direct, "body"), "a direct message in between");
  // The membership changes, in order and with their content.
  auto ev = [&](std::int64_t seq) { return obj_field(timeline[seq - 1].as_object(), "event"); };
  EXPECT_EQ(str_field(ev(6), "event"), "renamed");
  EXPECT_EQ(str_field(ev(6), "name"), "renamed");
  EXPECT_EQ(str_field(ev(7), "event"), "members_added");
  EXPECT_EQ(to_string(field(ev(7), "users")), to_string(json::array{json::value(joiner.name)}));
  EXPECT_EQ(str_field(ev(11), "event"), "member_removed");
  EXPECT_EQ(str_field(ev(11), "user"), peer.name);
  EXPECT_EQ(str_field(ev(12), "event"), "role_changed");
  EXPECT_EQ(str_field(ev(12), "user"), off.name);
  EXPECT_EQ(str_field(ev(12), "role"), "admin");
  for (std::int64_t s : {6, 7, 11, 12})
    EXPECT_EQ(str_field(timeline[s - 1].as_object(), "kind"), "event");

  // The current state matches what it learned, and it can use its new role.
  auto info = request_ok(*c, op("group_info", chat_id));
  std::map<std::string, std::string> roles;
  for (const auto& e : arr_field(obj_field(info, "chat"), "members"))
    roles[str_field(e.as_object(), "user")] = str_field(e.as_object(), "role");
  EXPECT_EQ(roles, (std::map<std::string, std::string>{
                       {owner.name, "owner"}, {off.name, "admin"}, {joiner.name, "member"}}));
  request_ok(*c, {{"type", "group_rename"}, {"chat_id", chat_id}, {"name", "by the returner"}});

  // The removed peer's log ends with its removal.
  auto p_updates = sync_all(*p, 0);
  auto p_group = updates_of_chat(p_updates, chat_id);
  ASSERT_FALSE(p_group.empty());
  EXPECT_TRUE(is_event(obj_field(p_group.back(), "message"), "member_removed"));
  EXPECT_EQ(int_field(obj_field(p_group.back(), "message"), "seq"), 11);
}

// ---------------------------------------------------------------------------------------------
// Large groups: a server with [groups] large_threshold = 3.

class LargeGroupTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<ServerProcess>(
        TomlConfig::test_defaults().set("groups", "large_threshold", "3"));
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "parleyd did not start"; }
  void TearDown() override { EXPECT_TRUE(server_->alive()) << "parleyd died during the test"; }
  static std::uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ServerProcess> server_;
};

TEST_F(LargeGroupTest, MessagesArePushedWithoutPtsAndSyncedPerChat) {
  constexpr int kPerSender = 8;
  auto owner = new_account(port(), "owner");
  auto a = new_account(port(), "amy");
  auto b = new_account(port(), "ben");
  auto c = new_account(port(), "cat");  // offline until the catch-up
  auto d = new_account(port(), "dan");  // removed later
  auto o1 = connect_authed(port(), owner.token);
  auto o2 = connect_authed(port(), login(port(), owner.name).token);
  auto a1 = connect_authed(port(), a.token);
  auto a2 = connect_authed(port(), login(port(), a.name).token);
  auto b1 = connect_authed(port(), b.token);
  auto d1 = connect_authed(port(), d.token);

  auto created = create_group(*o1, "large", {a.name, b.name, c.name, d.name});
  ASSERT_FALSE(created.empty());
  const auto chat_id = chat_of(created);
  EXPECT_TRUE(bool_field(obj_field(created, "chat"), "large"));
  EXPECT_EQ(int_field(obj_field(created, "chat"), "member_count"), 5);
  // The created event reaches every member's log (it tells them about the group).
  for (auto* dev : {o2.get(), a1.get(), a2.get(), b1.get(), d1.get()}) {
    ASSERT_TRUE(wait_seen(*dev, chat_id, 1));
    auto seen = seen_in_chat(*dev, chat_id);
    ASSERT_TRUE(seen[0].pts.has_value()) << "the created event comes through the log";
    EXPECT_EQ(*seen[0].pts, 1);
    EXPECT_TRUE(is_event(seen[0].message, "created"));
  }

  // Three members send at once.
  std::vector<Sender> senders{
      {o1.get(), owner.name, {}, {}}, {a1.get(), a.name, {}, {}}, {b1.get(), b.name, {}, {}}};
  {
    std::latch go(3);
    std::vector<std::thread> threads;
    for (auto& s : senders)
      threads.emplace_back([&, sp = &s] {
        go.arrive_and_wait();
        run_sends(*sp, chat_id, kPerSender, 4);
      });
    for (auto& t : threads) t.join();
  }
  for (const auto& s : senders) ASSERT_TRUE(s.error.empty()) << s.error;
  const std::int64_t last = 1 + 3 * kPerSender;
  std::map<std::int64_t, std::string> id_by_seq{{1, str_field(created, "message_id")}};
  for (const auto& s : senders)
    for (const auto& ack : s.acks)
      EXPECT_TRUE(id_by_seq.emplace(int_field(ack, "seq"), str_field(ack, "message_id")).second);
  ASSERT_EQ(static_cast<std::int64_t>(id_by_seq.size()), last);

  // Every device: seq 1..last in order, the messages pushed without pts.
  std::vector<std::pair<std::string, WsClient*>> devices{
      {"owner 1", o1.get()}, {"owner 2", o2.get()}, {"amy 1", a1.get()},
      {"amy 2", a2.get()},   {"ben", b1.get()},     {"dan", d1.get()}};
  for (auto& [name, dev] : devices) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(wait_seen(*dev, chat_id, static_cast<std::size_t>(last)))
        << "saw " << seen_in_chat(*dev, chat_id).size() << " of " << last;
    auto seen = seen_in_chat(*dev, chat_id);
    ASSERT_EQ(static_cast<std::int64_t>(seen.size()), last);
    for (std::int64_t i = 0; i < last; ++i) {
      const auto& s = seen[static_cast<std::size_t>(i)];
      EXPECT_EQ(s.seq, i + 1) << "arrival " << i;
      EXPECT_EQ(s.message_id, id_by_seq[s.seq]);
      if (s.push && i > 0) {
        EXPECT_FALSE(s.pts.has_value()) << "large-group push with a pts";
      }
    }
  }
  // The messages are not in the members' logs: dan's log holds only the created event.
  auto d_log = sync_all(*d1, 0);
  ASSERT_EQ(d_log.size(), 1u) << to_string(d_log);
  EXPECT_TRUE(is_event(obj_field(d_log[0].as_object(), "message"), "created"));

  // The offline member: its log tells it about the group, then per-chat sync by after_seq.
  auto c1 = connect_authed(port(), c.token);
  auto c_log = sync_all(*c1, 0);
  ASSERT_EQ(c_log.size(), 1u) << to_string(c_log);
  const auto& c_created = obj_field(c_log[0].as_object(), "message");
  EXPECT_TRUE(is_event(c_created, "created"));
  auto chats = request_ok(*c1, {{"type", "chats"}});
  ASSERT_EQ(arr_field(chats, "chats").size(), 1u) << to_string(chats);
  const auto& summary = arr_field(chats, "chats")[0].as_object();
  EXPECT_TRUE(bool_field(summary, "large"));
  EXPECT_TRUE(bool_field(summary, "member"));
  EXPECT_EQ(int_field(summary, "last_seq"), last);
  {
    auto rest = history_after(*c1, chat_id, int_field(c_created, "seq"), 5);
    ASSERT_EQ(seqs_of(rest), range(2, last));
    for (const auto& m : rest)
      EXPECT_EQ(str_field(m.as_object(), "message_id"), id_by_seq[int_field(m.as_object(), "seq")]);
  }
  {
    // A device with nothing of the chat yet pages forwards from after_seq 0 (§3.6: the
    // messages with seq > N, oldest first).
    auto first_page = request_ok(
        *c1, {{"type", "history"}, {"chat_id", chat_id}, {"after_seq", 0}, {"limit", 5}});
    EXPECT_EQ(seqs_of(arr_field(first_page, "messages")), range(1, 5))
        << "after_seq 0 must page forwards from seq 1: " << to_string(first_page);
    EXPECT_TRUE(bool_field(first_page, "has_more"));
    auto all = history_after(*c1, chat_id, 0, 5);
    EXPECT_EQ(seqs_of(all), range(1, last));
  }

  // Removal: dan learns it through its log; no further pushes of the group reach it.
  auto removed = request_ok(*o1, op_user("group_remove", chat_id, d.name));
  const auto removed_seq = int_field(removed, "seq");
  EXPECT_EQ(removed_seq, last + 1);
  EXPECT_EQ(int_field(removed, "pts"), 0) << "the owner's log did not get the event";
  {
    auto push = wait_message(*d1, [&](const json::object& m) {
      return int_field(m, "chat_id") == chat_id && int_field(m, "seq") == removed_seq;
    });
    ASSERT_TRUE(push.has_value());
    EXPECT_TRUE(is_event(obj_field(*push, "message"), "member_removed"));
    ASSERT_TRUE(has_int(*push, "pts")) << "the removal reaches the removed member's log";
    EXPECT_EQ(int_field(*push, "pts"), 2);
  }
  auto after_removal = send_to_chat_ok(*a1, chat_id, "after dan left");
  EXPECT_EQ(int_field(after_removal, "seq"), removed_seq + 1);
  // The rest see the removal and the next message, without pts.
  for (auto* dev : {o2.get(), a2.get(), b1.get(), c1.get()}) {
    auto push = wait_message(*dev, [&](const json::object& m) {
      return int_field(m, "chat_id") == chat_id && int_field(m, "seq") == removed_seq + 1;
    });
    ASSERT_TRUE(push.has_value());
    EXPECT_FALSE(push->contains("pts"));
  }
  // A direct message to dan after that: pushes to a connection leave in commit order, so a
  // group push for dan would have come before it.
  send_ok(*b1, d.name, "are you still there?");
  ASSERT_TRUE(wait_message(*d1, [&](const json::object& m) { return m.contains("to"); }));
  for (const auto& s : seen_in_chat(*d1, chat_id))
    EXPECT_LE(s.seq, removed_seq) << "pushed after its removal: " << to_string(s.message);
  d_log = sync_all(*d1, 0);
  ASSERT_EQ(d_log.size(), 3u) << to_string(d_log);
  EXPECT_TRUE(is_event(obj_field(d_log[1].as_object(), "message"), "member_removed"));
  EXPECT_EQ(int_field(obj_field(d_log[1].as_object(), "message"), "seq"), removed_seq);
  EXPECT_EQ(seqs_of(full_history(*d1, chat_id, 10)), range(1, removed_seq));
  auto past =
      request_ok(*d1, {{"type", "history"}, {"chat_id", chat_id}, {"after_seq", removed_seq}});
  EXPECT_TRUE(arr_field(past, "messages").empty()) << to_string(past);
  EXPECT_FALSE(bool_field(past, "has_more"));
  EXPECT_TRUE(
      refused(*d1, send_to_chat_frame(chat_id, "let me back", next_client_msg_id()), "forbidden"));
}

TEST_F(LargeGroupTest, GroupGrowingPastTheThresholdTellsEveryMembersLog) {
  auto owner = new_account(port(), "owner");
  auto a = new_account(port(), "amy");
  auto b = new_account(port(), "ben");
  auto c = new_account(port(), "cat");
  auto o1 = connect_authed(port(), owner.token);
  auto a1 = connect_authed(port(), a.token);
  auto b1 = connect_authed(port(), b.token);
  auto c1 = connect_authed(port(), c.token);

  // 3 members: not above the threshold, so a small group with pts pushes.
  auto created = create_group(*o1, "growing", {a.name, b.name});
  ASSERT_FALSE(created.empty());
  const auto chat_id = chat_of(created);
  EXPECT_FALSE(bool_field(obj_field(created, "chat"), "large"));
  send_to_chat_ok(*o1, chat_id, "small");
  for (auto* dev : {a1.get(), b1.get()}) {
    ASSERT_TRUE(wait_seen(*dev, chat_id, 2));
    auto seen = seen_in_chat(*dev, chat_id);
    ASSERT_TRUE(seen[1].pts.has_value()) << "small-group message without pts";
    EXPECT_EQ(*seen[1].pts, 2);
  }

  // The fourth member makes it large: the event with "large":true reaches every log.
  auto added = request_ok(*o1, add_frame(chat_id, {c.name}));
  ASSERT_FALSE(added.empty());
  const auto add_seq = int_field(added, "seq");
  EXPECT_EQ(add_seq, 3);
  EXPECT_TRUE(bool_field(obj_field(added, "chat"), "large"));
  EXPECT_EQ(int_field(added, "pts"), 3) << "the owner's log got the event";
  for (auto& [who, dev, pts_before] :
       std::vector<std::tuple<std::string, WsClient*, std::int64_t>>{{owner.name, o1.get(), 2},
                                                                     {a.name, a1.get(), 2},
                                                                     {b.name, b1.get(), 2},
                                                                     {c.name, c1.get(), 0}}) {
    SCOPED_TRACE(who);
    auto log = sync_all(*dev, pts_before);
    ASSERT_EQ(log.size(), 1u) << to_string(log);
    EXPECT_EQ(int_field(log[0].as_object(), "pts"), pts_before + 1);
    const auto& m = obj_field(log[0].as_object(), "message");
    EXPECT_EQ(int_field(m, "seq"), add_seq);
    ASSERT_TRUE(is_event(m, "members_added")) << to_string(m);
    const auto* large = event_of(m).if_contains("large");
    EXPECT_TRUE(large != nullptr && large->is_bool() && large->as_bool())
        << "no \"large\":true in " << to_string(m);
  }
  for (auto* dev : {a1.get(), b1.get(), c1.get()}) {
    auto push = wait_message(*dev, [&](const json::object& m) {
      return int_field(m, "chat_id") == chat_id && int_field(m, "seq") == add_seq;
    });
    ASSERT_TRUE(push.has_value());
    EXPECT_TRUE(has_int(*push, "pts"));
  }
  // From now on messages are pushed without pts, also to the new member.
  send_to_chat_ok(*a1, chat_id, "large now");
  for (auto* dev : {o1.get(), b1.get(), c1.get()}) {
    auto push = wait_message(*dev, [&](const json::object& m) {
      return int_field(m, "chat_id") == chat_id && int_field(m, "seq") == add_seq + 1;
    });
    ASSERT_TRUE(push.has_value());
    EXPECT_FALSE(push->contains("pts")) << to_string(*push);
    EXPECT_EQ(str_field(obj_field(*push, "message"), "body"), "large now");
  }
  auto chats = request_ok(*b1, {{"type", "chats"}});
  ASSERT_EQ(arr_field(chats, "chats").size(), 1u);
  EXPECT_TRUE(bool_field(arr_field(chats, "chats")[0].as_object(), "large"));
  EXPECT_EQ(int_field(chats, "pts"), 3) << "the message did not go to the log";
}

// ---------------------------------------------------------------------------------------------
// Bad input and limits: a server with [groups] max_members = 4, max_groups_per_user = 2.

TEST(GroupBadInputTest, RefusesBadRequestsAndKeepsServing) {
  ServerProcess server(TomlConfig::test_defaults()
                           .set("groups", "max_members", "4")
                           .set("groups", "max_groups_per_user", "2"));
  const auto port = server.port();
  auto owner = new_account(port, "owner");
  auto u1 = new_account(port, "u1");
  auto u2 = new_account(port, "u2");
  auto u3 = new_account(port, "u3");
  auto u4 = new_account(port, "u4");
  auto busy = new_account(port, "busy");
  auto o = connect_authed(port, owner.token);
  auto bz = connect_authed(port, busy.token);
  const auto ghost = unique_username("ghost");  // never registered
  constexpr std::int64_t kNoSuchChat = 987654321;

  {
    SCOPED_TRACE("unknown chat ids");
    EXPECT_TRUE(
        refused(*o, send_to_chat_frame(kNoSuchChat, "hi", next_client_msg_id()), "not_found"));
    EXPECT_TRUE(refused(*o, {{"type", "history"}, {"chat_id", kNoSuchChat}}, "not_found"));
    EXPECT_TRUE(refused(*o, {{"type", "history"}, {"chat_id", kNoSuchChat}, {"after_seq", 0}},
                        "not_found"));
    EXPECT_TRUE(refused(*o, op("group_info", kNoSuchChat), "not_found"));
    EXPECT_TRUE(refused(*o, add_frame(kNoSuchChat, {u1.name}), "not_found"));
    EXPECT_TRUE(refused(*o, op_user("group_remove", kNoSuchChat, u1.name), "not_found"));
    EXPECT_TRUE(refused(*o, op("group_leave", kNoSuchChat), "not_found"));
    EXPECT_TRUE(refused(*o, {{"type", "group_rename"}, {"chat_id", kNoSuchChat}, {"name", "x"}},
                        "not_found"));
    // A direct chat is not a group.
    const auto direct = int_field(send_ok(*o, u1.name, "direct"), "chat_id");
    EXPECT_TRUE(refused(*o, op("group_info", direct), "not_found"));
    EXPECT_TRUE(refused(*o, add_frame(direct, {u2.name}), "not_found"));
  }

  auto g = create_group(*o, "limits", {u1.name, u2.name});
  ASSERT_FALSE(g.empty());
  const auto chat_id = chat_of(g);
  {
    SCOPED_TRACE("unknown users and duplicates");
    EXPECT_TRUE(refused(*o, add_frame(chat_id, {ghost}), "not_found"));
    EXPECT_TRUE(refused(*o, add_frame(chat_id, {u3.name, ghost}), "not_found"));
    EXPECT_TRUE(refused(
        *o,
        {{"type", "group_create"}, {"name", "ghosts"}, {"members", users_array({u3.name, ghost})}},
        "not_found"));
    EXPECT_TRUE(refused(*o, add_frame(chat_id, {u1.name}), "conflict"));
    EXPECT_TRUE(refused(*o, add_frame(chat_id, {u3.name, u1.name}), "conflict"));
    EXPECT_TRUE(refused(*o, add_frame(chat_id, {owner.name}), "conflict"));
    EXPECT_TRUE(refused(*o, op_user("group_remove", chat_id, u4.name), "conflict"));
    request_ok(*o, op_user("group_promote", chat_id, u1.name));
    EXPECT_TRUE(refused(*o, op_user("group_promote", chat_id, u1.name), "conflict"));
    EXPECT_TRUE(refused(*o, op_user("group_demote", chat_id, u2.name), "conflict"));
    // None of the refused requests added anyone.
    auto info = request_ok(*o, op("group_info", chat_id));
    EXPECT_EQ(int_field(obj_field(info, "chat"), "member_count"), 3);
    EXPECT_EQ(int_field(obj_field(info, "chat"), "last_seq"), 2);
  }
  {
    SCOPED_TRACE("over the limits");
    // max_members = 4: the creator and 4 others is 5.
    EXPECT_TRUE(refused(*o,
                        {{"type", "group_create"},
                         {"name", "five"},
                         {"members", users_array({u1.name, u2.name, u3.name, u4.name})}},
                        "too_large"));
    request_ok(*o, add_frame(chat_id, {u3.name}));  // 4 members
    EXPECT_TRUE(refused(*o, add_frame(chat_id, {u4.name}), "too_large"));
    // max_groups_per_user = 2.
    auto g1 = create_group(*bz, "busy 1", {});
    auto g2 = create_group(*o, "busy 2", {busy.name});
    ASSERT_FALSE(g1.empty());
    ASSERT_FALSE(g2.empty());
    EXPECT_TRUE(refused(*bz, {{"type", "group_create"}, {"name", "busy 3"}}, "too_large"));
    {
      auto c3 = connect_authed(port, u3.token);  // in one group: may create another
      EXPECT_TRUE(refused(
          *c3,
          {{"type", "group_create"}, {"name", "busy 3"}, {"members", users_array({busy.name})}},
          "too_large"));
    }
    auto g3 = create_group(*connect_authed(port, u4.token), "u4's", {});
    ASSERT_FALSE(g3.empty());
    {
      auto c4 = connect_authed(port, u4.token);
      EXPECT_TRUE(refused(*c4, add_frame(chat_of(g3), {busy.name}), "too_large"));
    }
    // Leaving frees a place.
    request_ok(*bz, op("group_leave", chat_of(g2)));
    auto c4 = connect_authed(port, u4.token);
    request_ok(*c4, add_frame(chat_of(g3), {busy.name}));
    // Name length: max_name_bytes 128.
    EXPECT_TRUE(
        refused(*o, {{"type", "group_create"}, {"name", std::string(129, 'n')}}, "too_large"));
    EXPECT_TRUE(refused(
        *o, {{"type", "group_rename"}, {"chat_id", chat_id}, {"name", std::string(129, 'n')}},
        "too_large"));
    request_ok(*o,
               {{"type", "group_rename"}, {"chat_id", chat_id}, {"name", std::string(128, 'n')}});
  }
  {
    SCOPED_TRACE("malformed requests");
    EXPECT_TRUE(refused(*o, {{"type", "group_create"}}, "bad_request"));
    EXPECT_TRUE(refused(*o, {{"type", "group_create"}, {"name", ""}}, "bad_request"));
    EXPECT_TRUE(refused(*o, {{"type", "group_create"}, {"name", 7}}, "bad_request"));
    EXPECT_TRUE(refused(*o, {{"type", "group_create"}, {"name", "x"}, {"members", u1.name}},
                        "bad_request"));
    EXPECT_TRUE(refused(*o, {{"type", "group_create"}, {"name", "x"}, {"members", json::array{1}}},
                        "bad_request"));
    EXPECT_TRUE(refused(*o, op("group_add", chat_id), "bad_request"));
    EXPECT_TRUE(refused(*o, {{"type", "group_add"}, {"chat_id", chat_id}, {"users", json::array{}}},
                        "bad_request"));
    EXPECT_TRUE(
        refused(*o, {{"type", "group_add"}, {"users", users_array({u4.name})}}, "bad_request"));
    EXPECT_TRUE(refused(*o,
                        {{"type", "group_add"},
                         {"chat_id", std::to_string(chat_id)},
                         {"users", users_array({u4.name})}},
                        "bad_request"));
    EXPECT_TRUE(refused(*o, add_frame(0, {u4.name}), "bad_request"));
    EXPECT_TRUE(refused(*o, add_frame(-1, {u4.name}), "bad_request"));
    EXPECT_TRUE(refused(*o, op("group_remove", chat_id), "bad_request"));
    EXPECT_TRUE(refused(*o, op("group_promote", chat_id), "bad_request"));
    EXPECT_TRUE(refused(*o, op("group_transfer", chat_id), "bad_request"));
    EXPECT_TRUE(refused(*o, op("group_rename", chat_id), "bad_request"));
    EXPECT_TRUE(refused(*o, op("group_settings", chat_id), "bad_request"));
    EXPECT_TRUE(refused(*o,
                        {{"type", "group_settings"}, {"chat_id", chat_id}, {"full_history", "yes"}},
                        "bad_request"));
    EXPECT_TRUE(refused(*o, {{"type", "group_info"}}, "bad_request"));
    EXPECT_TRUE(refused(*o, {{"type", "group_leave"}}, "bad_request"));
    EXPECT_TRUE(refused(*o, {{"type", "group_frobnicate"}, {"chat_id", chat_id}}, "unknown_type"));
    // group_remove of yourself: use group_leave.
    EXPECT_TRUE(refused(*o, op_user("group_remove", chat_id, owner.name), "bad_request"));
    auto c1 = connect_authed(port, u1.token);  // an admin
    EXPECT_TRUE(refused(*c1, op_user("group_remove", chat_id, u1.name), "bad_request"));
    auto info = request_ok(*o, op("group_info", chat_id));
    EXPECT_EQ(int_field(obj_field(info, "chat"), "member_count"), 4);
  }
  {
    SCOPED_TRACE("a deleted group");
    auto deleted = request_ok(*o, op("group_delete", chat_id));
    ASSERT_FALSE(deleted.empty());
    EXPECT_TRUE(refused(*o, op("group_info", chat_id), "not_found"));
    EXPECT_TRUE(
        refused(*o, send_to_chat_frame(chat_id, "anyone?", next_client_msg_id()), "not_found"));
    EXPECT_TRUE(refused(*o, add_frame(chat_id, {u4.name}), "not_found"));
    // The members were told through their logs.
    auto c2 = connect_authed(port, u2.token);
    auto log = sync_all(*c2, 0);
    ASSERT_FALSE(log.empty());
    EXPECT_TRUE(is_event(obj_field(log.back().as_object(), "message"), "group_deleted"))
        << to_string(log);
  }

  // The server still serves: a fresh client, a fresh group, a message.
  auto fresh = new_account(port, "fresh");
  expect_server_healthy(port, fresh.token);
  auto f = connect_authed(port, fresh.token);
  auto fg = create_group(*f, "after all that", {u2.name});
  ASSERT_FALSE(fg.empty());
  auto sent = send_to_chat_ok(*f, chat_of(fg), "still alive");
  EXPECT_EQ(int_field(sent, "seq"), 2);
  EXPECT_TRUE(server.alive());
}

}  // namespace
}  // namespace parley::test
