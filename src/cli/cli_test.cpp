// Runs the `parley` binary against the in-process fake server, as scripts would.
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "cli/cli_test_harness.h"
#include "client/fake_server.h"
#include "parley/cursor_file.h"

namespace parley {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

class CliTest : public cli_test::CliHarness {
 protected:
  void SetUp() override {
    CliHarness::SetUp();
    server_ = std::make_unique<testing::FakeServer>();
  }
  void TearDown() override {
    server_.reset();
    CliHarness::TearDown();
  }
  std::string ServerUrl() override { return server_->url(); }

  std::unique_ptr<testing::FakeServer> server_;
};

using cli_test::Lines;
using cli_test::Result;
using cli_test::Slurp;

// Waits until a process has printed `text` on stdout (e.g. a listener's first presence line:
// its subscription is in place). False on timeout.
bool WaitForOutput(const std::string& out_path, const std::string& text,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Slurp(out_path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_F(CliTest, RegisterLoginProfileFile) {
  Result r = Run({"register", "alice"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "registered alice on " + server_->url() + "\n");

  r = Run({"register", "alice"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "parley: username_taken: taken\n");

  r = Run({"login", "alice"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("logged in as alice on " + server_->url()), std::string::npos) << r.out;

  std::string path = dir_ + "/config/parley/default.json";
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  json::object profile = json::parse(Slurp(path)).as_object();
  EXPECT_EQ(profile["server"], json::value(server_->url()));
  EXPECT_EQ(profile["user"], "alice");
  EXPECT_FALSE(profile["token"].as_string().empty());
  EXPECT_FALSE(profile["device_id"].as_string().empty());

  password_ = "wrong password";
  r = Run({"login", "alice"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: invalid_credentials: ", 0), 0u) << r.err;
}

TEST_F(CliTest, PasswordFromStdinWhenNotATerminal) {
  password_.reset();
  Result r = Run({"register", "alice"}, "from stdin\n");
  EXPECT_EQ(r.code, 0) << r.err;
  r = Run({"login", "alice"}, "from stdin\n");
  EXPECT_EQ(r.code, 0) << r.err;
  r = Run({"login", "alice"}, "");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no password"), std::string::npos) << r.err;
}

TEST_F(CliTest, SendListenHistoryChats) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");

  Result r = Run({"--profile", "alice", "send", "bob", "hi bob"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("sent to bob: chat 12 seq 1 id ", 0), 0u) << r.out;
  r = Run({"--profile", "alice", "send", "bob", "second\nline", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::object ack = json::parse(r.out).as_object();
  EXPECT_EQ(ack["chat_id"], 12);
  EXPECT_EQ(ack["seq"], 2);
  EXPECT_EQ(ack["duplicate"], false);
  EXPECT_TRUE(ack["message_id"].is_string());

  // No cursor yet: the snapshot's messages, then exit after 2.
  r = Run({"--profile", "bob", "listen", "--count", "2", "--timeout", "5"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"[chat 12 #1] alice -> bob: hi bob",
                                                    "[chat 12 #2] alice -> bob: second\\nline"}));
  EXPECT_EQ(LoadCursorFile(dir_ + "/config/parley/bob.cursor"), 2);

  // Nothing new: the timeout ends it; 3 when a --count was not reached.
  r = Run({"--profile", "bob", "listen", "--timeout", "0.5"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = Run({"--profile", "bob", "listen", "--count", "1", "--timeout", "0.5"});
  EXPECT_EQ(r.code, 3) << r.err;

  // Live messages while listening, JSON lines with pts.
  Proc listener =
      Spawn({"--profile", "bob", "listen", "--count", "2", "--json", "--timeout", "10"});
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "live 1"}).code, 0);
  ASSERT_EQ(Run({"--profile", "alice", "send", "--chat", "12", "live 2"}).code, 0);
  r = Wait(listener);
  EXPECT_EQ(r.code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  json::object first = json::parse(lines[0]).as_object();
  EXPECT_EQ(first["pts"], 3);
  EXPECT_EQ(first["body"], "live 1");
  EXPECT_EQ(first["sender"], "alice");
  EXPECT_EQ(first["seq"], 3);
  EXPECT_EQ(json::parse(lines[1]).as_object()["pts"], 4);

  r = Run({"--profile", "bob", "history", "alice"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 4u);
  EXPECT_EQ(Lines(r.out)[0], "[chat 12 #1] alice -> bob: hi bob");
  r = Run({"--profile", "bob", "history", "alice", "--limit", "2"});
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"[chat 12 #3] alice -> bob: live 1",
                                                    "[chat 12 #4] alice -> bob: live 2"}));
  EXPECT_NE(r.err.find("--before 3"), std::string::npos) << r.err;
  r = Run({"--profile", "bob", "history", "--chat", "12", "--before", "2", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::object page = json::parse(r.out).as_object();
  EXPECT_EQ(page["chat_id"], 12);
  EXPECT_EQ(page["messages"].as_array().size(), 1u);

  r = Run({"--profile", "bob", "chats"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "chat 12  with alice  last #4  4 unread  alice: live 2\nunread: 4 messages in 1 chat\n");
  r = Run({"--profile", "bob", "chats", "--json"});
  EXPECT_EQ(json::parse(r.out).as_object()["chats"].as_array().size(), 1u);
}

TEST_F(CliTest, ListenPrintsEachMessageOnceAcrossRuns) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");
  ASSERT_EQ(Run({"--profile", "bob", "listen", "--timeout", "0.3"}).code, 0);  // empty snapshot
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "m" + std::to_string(i)}).code, 0);
  }
  std::vector<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    Result r = Run({"--profile", "bob", "listen", "--count", "1", "--timeout", "5"});
    ASSERT_EQ(r.code, 0) << r.err;
    for (auto& l : Lines(r.out)) seen.push_back(l);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"[chat 12 #1] alice -> bob: m1",
                                            "[chat 12 #2] alice -> bob: m2",
                                            "[chat 12 #3] alice -> bob: m3"}));
}

TEST_F(CliTest, ListenResumesAfterServerDropsConnection) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");
  ASSERT_EQ(Run({"--profile", "bob", "listen", "--timeout", "0.3"}).code, 0);
  Proc listener = Spawn({"--profile", "bob", "listen", "--count", "3", "--timeout", "10"});
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "before"}).code, 0);
  std::this_thread::sleep_for(200ms);
  server_->SetPushes(false);
  server_->KillConnections();
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "while away"}).code, 0);
  server_->SetPushes(true);
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "after"}).code, 0);
  Result r = Wait(listener);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"[chat 12 #1] alice -> bob: before",
                                                    "[chat 12 #2] alice -> bob: while away",
                                                    "[chat 12 #3] alice -> bob: after"}));
}

TEST_F(CliTest, LargeGroupMessagesHaveNoPts) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "before"}).code, 0);
  server_->MarkLarge(12);
  ASSERT_EQ(Run({"--profile", "bob", "listen", "--count", "1", "--timeout", "5"}).code, 0);
  Proc listener =
      Spawn({"--profile", "bob", "listen", "--count", "1", "--json", "--timeout", "10"});
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(Run({"--profile", "alice", "send", "--chat", "12", "to the group"}).code, 0);
  Result r = Wait(listener);
  EXPECT_EQ(r.code, 0) << r.err;
  json::object o = json::parse(r.out).as_object();
  EXPECT_TRUE(o["pts"].is_null());
  EXPECT_EQ(o["body"], "to the group");
  EXPECT_FALSE(o.contains("to"));

  r = Run({"--profile", "bob", "chats"});
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{
                              "chat 12  group big (large)  last #2  2 unread  alice: to the group",
                              "unread: 2 messages in 1 chat"}));
  r = Run({"--profile", "bob", "history", "--chat", "12"});
  EXPECT_EQ(Lines(r.out).back(), "[chat 12 #2] alice: to the group");
}

TEST_F(CliTest, ErrorsAndUsage) {
  Result r = Run({"--profile", "nobody", "send", "bob", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_logged_in: ", 0), 0u) << r.err;

  RegisterAndLogin("alice");
  r = Run({"--profile", "alice", "send", "carol", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "parley: not_found: no such user: carol\n");

  r = Run({"--profile", "alice", "send", "bob"});
  EXPECT_EQ(r.code, 2);
  r = Run({"--profile", "alice", "send", "--chat", "12", "a", "b"});
  EXPECT_EQ(r.code, 2);
  r = Run({"frobnicate"});
  EXPECT_EQ(r.code, 2);
  r = Run({});
  EXPECT_EQ(r.code, 2);
  r = Run({"--profile", "../etc", "chats"});
  EXPECT_EQ(r.code, 2);
  r = Run({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("listen"), std::string::npos);

  r = Run({"--profile", "alice", "--server", "https://example.com", "chats"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: unsupported_scheme: ", 0), 0u) << r.err;

  uint16_t dead_port;
  {
    testing::FakeServer gone;
    dead_port = gone.port();
  }
  auto start = std::chrono::steady_clock::now();
  r = Run({"--profile", "alice", "--server", "http://127.0.0.1:" + std::to_string(dead_port),
           "send", "bob", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: connection_failed: ", 0), 0u) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);

  // listen keeps retrying, but a timeout without ever being connected is an error.
  r = Run({"--profile", "alice", "--server", "http://127.0.0.1:" + std::to_string(dead_port),
           "listen", "--timeout", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("reconnecting in"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("parley: connection_failed: "), std::string::npos) << r.err;
}

// The fake server knows no group_* requests: this covers the command line and error paths;
// cli_parleyd_test.cpp runs the group commands against parleyd.
TEST_F(CliTest, GroupUsageAndErrors) {
  Result r = Run({"--profile", "nobody", "group", "info", "5"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_logged_in: ", 0), 0u) << r.err;

  RegisterAndLogin("alice");
  r = Run({"--profile", "alice", "group", "info", "5"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "parley: unknown_type: unknown type group_info\n");
  r = Run({"--profile", "alice", "group", "create", "team", "--members", "bob,carol", "--json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "parley: unknown_type: unknown type group_create\n");
  EXPECT_EQ(server_->Requests("group_create"), 1);

  for (std::vector<std::string> args : {
           std::vector<std::string>{"group"},
           {"group", "frobnicate", "5"},
           {"group", "create"},
           {"group", "create", ""},
           {"group", "info"},
           {"group", "info", "x"},
           {"group", "info", "0"},
           {"group", "info", "-3"},
           {"group", "add", "5"},
           {"group", "remove", "5", "bob", "carol"},
           {"group", "promote", "5"},
           {"group", "rename", "5"},
           {"group", "rename", "5", ""},
           {"group", "leave", "5", "extra"},
           {"group", "settings", "5"},
           {"group", "settings", "5", "--full-history", "maybe"},
           {"group", "info", "5", "--timeout", "0"},
       }) {
    args.insert(args.begin(), {"--profile", "alice"});
    r = Run(args);
    EXPECT_EQ(r.code, 2) << args.back() << ": " << r.out << r.err;
  }
  EXPECT_EQ(server_->Requests("group_info"), 1);  // usage errors send nothing

  r = Run({"group", "--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* action : {"create", "rename", "add", "remove", "promote", "demote", "leave",
                             "transfer", "delete", "settings", "info"}) {
    EXPECT_NE(r.out.find(action), std::string::npos) << action;
  }
}

// ---------------------------------------------------------------- receipts, typing, presence

TEST_F(CliTest, ReceiptsUsageErrors) {
  Result r = Run({"--profile", "nobody", "read", "alice"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_logged_in: ", 0), 0u) << r.err;

  RegisterAndLogin("alice");
  for (std::vector<std::string> args : {
           std::vector<std::string>{"read"},
           {"read", ""},
           {"read", "0"},
           {"read", "000"},
           {"read", "9007199254740992"},  // 2^53
           {"read", "99999999999999999999"},
           {"read", "12", "--seq", "0"},
           {"read", "12", "--seq", "-1"},
           {"read", "12", "--seq", "x"},
           {"read", "12", "13"},
           {"read", "12", "--timeout", "0"},
           {"typing"},
           {"typing", "12", "maybe"},
           {"typing", "0"},
           {"typing", "12", "start", "extra"},
           {"presence"},
           {"presence", ""},
           {"presence", "bob", "--timeout", "0"},
           {"settings", "--presence", "sometimes"},
           {"settings", "--presence"},
           {"settings", "extra"},
           {"listen", "--presence", "bob"},  // needs --events
           {"listen", "--events", "--presence", ""},
           {"listen", "--events", "--count", "0"},
       }) {
    args.insert(args.begin(), {"--profile", "alice"});
    r = Run(args);
    EXPECT_EQ(r.code, 2) << args.back() << ": " << r.out << r.err;
    EXPECT_EQ(r.out, "");
  }
  for (const char* type : {"mark_read", "typing", "presence_subscribe", "settings"}) {
    EXPECT_EQ(server_->Requests(type), 0) << type;  // usage errors send nothing
  }
  EXPECT_EQ(server_->Connections(), 0);

  r = Run({"--help"});
  for (const char* command : {"read", "typing", "presence", "settings"}) {
    EXPECT_NE(r.out.find(command), std::string::npos) << command;
  }
  r = Run({"listen", "--help"});
  EXPECT_NE(r.out.find("--events"), std::string::npos);

  // A server that does not know the requests: exit 1 with its code.
  server_->Disable("mark_read");
  r = Run({"--profile", "alice", "read", "12"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "parley: unknown_type: unknown type mark_read\n");
}

TEST_F(CliTest, ReadChatsAndListenEvents) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "one"}).code, 0);
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "two"}).code, 0);
  Result r = Run({"--profile", "alice", "listen", "--count", "2", "--timeout", "5"});
  ASSERT_EQ(r.code, 0) << r.err;  // alice's cursor: 2

  r = Run({"--profile", "bob", "chats"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out),
            (std::vector<std::string>{"chat 12  with alice  last #2  2 unread  alice: two",
                                      "unread: 2 messages in 1 chat"}));

  r = Run({"--profile", "bob", "read", "alice", "--seq", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "read chat 12 up to #1: 1 unread\n");
  r = Run({"--profile", "bob", "read", "12", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::object result = json::parse(r.out).as_object();
  EXPECT_EQ(result["chat_id"], 12);
  EXPECT_EQ(result["kind"], "read");
  EXPECT_EQ(result["seq"], 2);
  EXPECT_EQ(result["advanced"], true);
  EXPECT_EQ(result["unread"], 0);
  EXPECT_GT(result["pts"].as_int64(), 0);
  r = Run({"--profile", "bob", "read", "12", "--seq", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "read chat 12 up to #2: 0 unread (unchanged: already read that far)\n");
  r = Run({"--profile", "bob", "read", "99"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "parley: not_found: no such chat\n");
  r = Run({"--profile", "bob", "read", "carol"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_found: ", 0), 0u) << r.err;
  auto frames = server_->Frames("mark_read");
  ASSERT_GE(frames.size(), 2u);
  EXPECT_EQ(json::parse(frames[0]).as_object()["with"], "alice");

  r = Run({"--profile", "bob", "chats"});
  EXPECT_EQ(Lines(r.out),
            (std::vector<std::string>{"chat 12  with alice  last #2  alice: two", "unread: none"}));
  r = Run({"--profile", "alice", "chats", "--json"});
  json::object list = json::parse(r.out).as_object();
  EXPECT_EQ(list["unread_total"], 0);
  EXPECT_EQ(list["unread_chats"], 0);
  json::object chat = list["chats"].as_array()[0].as_object();
  EXPECT_EQ(chat["peer_read_seq"], 2);
  EXPECT_EQ(chat["read_seq"], 2);
  EXPECT_EQ(chat["unread"], 0);

  // alice's log now holds bob's two read receipts, then his message: without --events only the
  // message is printed, and the cursor moves over the receipts.
  ASSERT_EQ(Run({"--profile", "bob", "send", "alice", "three"}).code, 0);
  r = Run({"--profile", "alice", "listen", "--count", "1", "--timeout", "5"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "[chat 12 #3] bob -> alice: three\n");
  EXPECT_EQ(LoadCursorFile(dir_ + "/config/parley/alice.cursor"), 5);

  // Her own read (from another device) and bob's presence, with --events.
  ASSERT_EQ(Run({"--profile", "alice", "read", "bob"}).code, 0);
  r = Run({"--profile", "alice", "listen", "--events", "--presence", "bob", "--count", "2",
           "--timeout", "5"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines[0].rfind("presence bob: offline, last seen 20", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "receipt chat 12: alice read up to 3");
  EXPECT_EQ(LoadCursorFile(dir_ + "/config/parley/alice.cursor"), 6);

  // Live events as JSON: the subscribe answer, bob coming online for `typing`, the typing
  // push, bob going offline.
  Proc listener = Spawn({"--profile", "alice", "listen", "--events", "--json", "--count", "4",
                         "--timeout", "10"});  // presence of the direct chats' peers: bob
  ASSERT_TRUE(WaitForOutput(listener.out_path, "\"presence\""));
  r = Run({"--profile", "bob", "typing", "alice"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "typing start: forwarded\n");
  r = Wait(listener);
  EXPECT_EQ(r.code, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  std::vector<json::object> events;
  for (const auto& l : lines) events.push_back(json::parse(l).as_object());
  EXPECT_EQ(events[0]["type"], "presence");
  EXPECT_EQ(events[0]["presence"].as_array()[0].as_object()["online"], false);
  EXPECT_EQ(events[1]["presence"].as_array()[0].as_object()["online"], true);
  EXPECT_EQ(
      json::value(events[2]),
      json::parse(
          R"({"type":"typing","chat_id":12,"user":"bob","state":"start","expires_ms":6000})"));
  EXPECT_EQ(events[3]["type"], "presence");
  json::object offline = events[3]["presence"].as_array()[0].as_object();
  EXPECT_EQ(offline["user"], "bob");
  EXPECT_EQ(offline["online"], false);
  EXPECT_GT(offline["last_seen"].as_int64(), 0);

  r = Run({"--profile", "bob", "typing", "12", "stop", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"forwarded\":true}\n");
}

TEST_F(CliTest, ListenEventsReceiptJsonAndFrozenCursor) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "one"}).code, 0);
  ASSERT_EQ(Run({"--profile", "alice", "listen", "--count", "1", "--timeout", "5"}).code, 0);
  ASSERT_EQ(Run({"--profile", "bob", "read", "12"}).code, 0);            // alice's pts 2
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "two"}).code, 0);  // pts 3
  // --count 1 stops at the receipt: the message after it is not lost.
  Result r = Run({"--profile", "alice", "listen", "--events", "--presence", "nosuchuser", "--count",
                  "1", "--timeout", "5", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  json::object o = json::parse(lines[0]).as_object();
  if (o["type"] == "presence") {  // the subscribe answer came first
    EXPECT_EQ(o["presence"].as_array()[0].as_object()["hidden"], true);
  } else {
    EXPECT_EQ(o["type"], "receipt");
    EXPECT_EQ(o["pts"], 2);
    json::object receipt = o["receipt"].as_object();
    EXPECT_EQ(receipt["user"], "bob");
    EXPECT_EQ(receipt["kind"], "read");
    EXPECT_EQ(receipt["seq"], 1);
    EXPECT_EQ(receipt["chat_id"], 12);
  }
  r = Run({"--profile", "alice", "listen", "--count", "1", "--timeout", "5"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "[chat 12 #2] alice -> bob: two\n");
}

TEST_F(CliTest, PresenceAndSettings) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");
  Result r = Run({"--profile", "bob", "settings"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "presence: everyone\n");
  r = Run({"--profile", "alice", "presence", "bob", "alice", "carol"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0].rfind("presence bob: offline", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "presence alice: online");
  EXPECT_EQ(lines[2], "presence carol: hidden");

  // --follow prints the changes until --timeout.
  Proc follower = Spawn({"--profile", "alice", "presence", "bob", "--follow", "--timeout", "3"});
  ASSERT_TRUE(WaitForOutput(follower.out_path, "presence bob: offline"));
  ASSERT_EQ(Run({"--profile", "bob", "settings", "--presence", "nobody"}).code, 0);
  r = Wait(follower);
  EXPECT_EQ(r.code, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0].rfind("presence bob: offline", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "presence bob: online");
  EXPECT_EQ(lines[2], "presence bob: hidden");  // and his going offline is not shown

  r = Run({"--profile", "bob", "settings", "--json"});
  EXPECT_EQ(r.out, "{\"presence\":\"nobody\"}\n");
  r = Run({"--profile", "alice", "presence", "bob", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"presence\":[{\"user\":\"bob\",\"hidden\":true}]}\n");
}

// ---- media: send --file, download, media lines, account delete (docs/MEDIA.md)

TEST_F(CliTest, SendFileDownloadAndMediaLines) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");
  std::string png = dir_ + "/cat.png";
  cli_test::WriteFile(png, cli_test::kTestPng);
  Result r = Run({"--profile", "alice", "send", "--file", png, "--caption", "our cat", "bob"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      r.out, m, std::regex(R"(sent to bob: chat 12 seq 1 id \d+ media ([0-9a-f]{64})\n)")))
      << r.out;
  std::string id = m[1];

  r = Run({"--profile", "bob", "listen", "--count", "1", "--timeout", "5"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "[chat 12 #1] alice -> bob: [image cat.png 8x8 165 B id=" + id + "] our cat\n");
  r = Run({"--profile", "bob", "history", "alice", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::object msg = json::parse(r.out).as_object()["messages"].as_array()[0].as_object();
  EXPECT_EQ(msg["kind"], "media");
  EXPECT_FALSE(msg.contains("body"));
  json::object media = msg["media"].as_object();
  EXPECT_EQ(media["id"], json::value(id));
  EXPECT_EQ(media["name"], "cat.png");
  EXPECT_EQ(media["caption"], "our cat");
  EXPECT_EQ(media["type"], "image/png");
  EXPECT_EQ(media["size"], 165);
  EXPECT_EQ(media["width"], 8);
  EXPECT_TRUE(media["thumbnail"].is_object());

  std::string got = dir_ + "/got.png";
  r = Run({"--profile", "bob", "download", id, "-o", got});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "downloaded " + id + " to " + got + ": 165 bytes (image/png)\n");
  EXPECT_EQ(Slurp(got), cli_test::kTestPng);
  EXPECT_FALSE(cli_test::FileExists(got + ".part"));
  r = Run({"--profile", "bob", "download", id, "-o", got});  // never over a file by default
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: file_exists: " + got + " exists", 0), 0u) << r.err;
  r = Run({"--profile", "bob", "download", id, "-o", got, "--force", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::object d = json::parse(r.out).as_object();
  EXPECT_EQ(d["size"], 165);
  EXPECT_EQ(d["path"], json::value(got));
  EXPECT_EQ(d["type"], "image/png");
  // Into a directory: the last component of --name.
  std::string into = dir_ + "/downloads";
  ASSERT_EQ(mkdir(into.c_str(), 0700), 0);
  r = Run({"--profile", "bob", "download", id, "-o", into, "--name", "../x/cat copy.png"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Slurp(into + "/cat copy.png"), cli_test::kTestPng);
  r = Run({"--profile", "bob", "download", id, "-o", into});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Slurp(into + "/" + id), cli_test::kTestPng);

  // A text file to the chat by id, JSON: the ack and the upload's answer.
  std::string txt = dir_ + "/notes.txt";
  cli_test::WriteFile(txt, "hello");
  r = Run({"--profile", "alice", "send", "--file", txt, "--chat", "12", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::object ack = json::parse(r.out).as_object();
  EXPECT_EQ(ack["seq"], 2);
  EXPECT_EQ(ack["media"].as_object()["type"], "text/plain");
  EXPECT_EQ(ack["media"].as_object()["size"], 5);
  std::string txt_id(ack["media"].as_object()["id"].as_string());
  r = Run({"--profile", "bob", "chats"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("alice: [file notes.txt 5 B id=" + txt_id + "]\n"), std::string::npos)
      << r.out;
  r = Run({"--profile", "bob", "listen", "--count", "1", "--timeout", "5", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::object line = json::parse(r.out).as_object();
  EXPECT_EQ(line["media"].as_object()["name"], "notes.txt");
  EXPECT_EQ(line["pts"], 2);
}

TEST_F(CliTest, MediaErrorsAndUsage) {
  RegisterAndLogin("alice");
  RegisterAndLogin("bob");
  RegisterAndLogin("carol");
  std::string png = dir_ + "/cat.png";
  cli_test::WriteFile(png, cli_test::kTestPng);

  Result r = Run({"--profile", "alice", "send", "--file", dir_ + "/missing.png", "bob"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "parley: io_error: cannot read " + dir_ + "/missing.png: No such file or directory\n");
  std::string elf = dir_ + "/true";
  cli_test::WriteFile(elf, Slurp("/bin/true"));
  r = Run({"--profile", "alice", "send", "--file", elf, "bob"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: unsupported_type: ", 0), 0u) << r.err;
  r = Run({"--profile", "alice", "send", "--file", png, "--type", "text/plain", "bob"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: unsupported_type: ", 0), 0u) << r.err;
  server_->SetMaxUpload(100);
  r = Run({"--profile", "alice", "send", "--file", png, "bob"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: too_large: ", 0), 0u) << r.err;
  server_->SetMaxUpload(1 << 20);
  cli_test::WriteFile(dir_ + "/empty", "");
  r = Run({"--profile", "alice", "send", "--file", dir_ + "/empty", "bob"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is empty"), std::string::npos) << r.err;

  // Usage: the text of a media message is --caption; --caption and --type need --file.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"send", "--file", png, "bob", "text"},
        std::vector<std::string>{"send", "--file", png},
        std::vector<std::string>{"send", "--file", png, "--chat", "12", "bob"},
        std::vector<std::string>{"send", "--caption", "x", "bob", "text"},
        std::vector<std::string>{"send", "--type", "image/png", "bob", "text"},
        std::vector<std::string>{"download", "abc"},
        std::vector<std::string>{"download", "-o", dir_ + "/x"},
        std::vector<std::string>{"account"}}) {
    std::vector<std::string> full{"--profile", "alice"};
    full.insert(full.end(), args.begin(), args.end());
    r = Run(full);
    EXPECT_EQ(r.code, 2) << args[0] << " " << args[1] << ": " << r.out << r.err;
  }
  EXPECT_EQ(server_->ChatMessages("alice", "bob"), 0);

  r = Run({"--profile", "alice", "send", "--file", png, "bob"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string id = r.out.substr(r.out.size() - 65, 64);
  std::string out = dir_ + "/out.png";
  r = Run({"--profile", "carol", "download", id, "-o", out});  // not in the chat
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_found: ", 0), 0u) << r.err;
  EXPECT_FALSE(cli_test::FileExists(out));
  EXPECT_FALSE(cli_test::FileExists(out + ".part"));
  r = Run({"--profile", "bob", "download", std::string(64, '0'), "-o", out});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_found: ", 0), 0u) << r.err;
  r = Run({"--profile", "bob", "download", "../account", "-o", out});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: invalid_argument: bad media id", 0), 0u) << r.err;
  EXPECT_FALSE(cli_test::FileExists(out));
}

TEST_F(CliTest, AccountDelete) {
  RegisterAndLogin("alice");
  password_ = "wrong password";
  Result r = Run({"--profile", "alice", "account", "delete"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: invalid_credentials: ", 0), 0u) << r.err;
  json::object profile = json::parse(Slurp(dir_ + "/config/parley/alice.json")).as_object();
  EXPECT_FALSE(profile["token"].as_string().empty());  // kept: nothing was deleted

  password_ = "correct horse";
  r = Run({"--profile", "alice", "account", "delete"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "deleted account alice on " + server_->url() + " (profile alice)\n");
  profile = json::parse(Slurp(dir_ + "/config/parley/alice.json")).as_object();
  EXPECT_TRUE(!profile.contains("token") || profile["token"].as_string().empty());
  r = Run({"--profile", "alice", "chats"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_logged_in: ", 0), 0u) << r.err;
  r = Run({"--profile", "alice", "login", "alice"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: invalid_credentials: ", 0), 0u) << r.err;
  r = Run({"register", "alice"});  // the name is not given out again
  EXPECT_EQ(r.code, 1);
}

TEST_F(CliTest, LogoutForgetsTheToken) {
  RegisterAndLogin("alice");
  Result r = Run({"--profile", "alice", "logout"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "logged out alice (profile alice)\n");
  json::object profile = json::parse(Slurp(dir_ + "/config/parley/alice.json")).as_object();
  EXPECT_EQ(profile["token"], "");
  r = Run({"--profile", "alice", "chats"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_logged_in: ", 0), 0u) << r.err;
}

TEST_F(CliTest, RevokedTokenEndsListenWithError) {
  RegisterAndLogin("bob");
  std::string token = std::string(
      json::parse(Slurp(dir_ + "/config/parley/bob.json")).as_object()["token"].as_string());
  Proc listener = Spawn({"--profile", "bob", "-v", "listen", "--timeout", "10"});
  // Revoke only once the listener is online: before, it would be refused as unauthorized.
  ASSERT_TRUE(WaitOnline(listener));
  server_->Revoke(token);
  Result r = Wait(listener);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("parley: token_revoked: "), std::string::npos) << r.err;
}

TEST_F(CliTest, InterruptedListenExits130) {
  RegisterAndLogin("bob");
  Proc listener = Spawn({"--profile", "bob", "listen"});
  std::this_thread::sleep_for(500ms);
  kill(listener.pid, SIGINT);
  Result r = Wait(listener);
  EXPECT_EQ(r.code, 130) << r.err;
}

}  // namespace
}  // namespace parley
