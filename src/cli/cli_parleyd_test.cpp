// The `parley` binary against the real parleyd (PARLEYD_BIN, set by CTest): the scripted
// interface end to end, including a listener that survives a kill -9 and restart of the
// server. Skipped when PARLEYD_BIN is not set.
#include <signal.h>

#include <chrono>
#include <map>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "cli/cli_test_harness.h"

namespace parley {
namespace {

using namespace std::chrono_literals;
using cli_test::Lines;
using cli_test::Result;
using cli_test::Slurp;
namespace json = boost::json;

class ParleydCliTest : public cli_test::CliHarness {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("PARLEYD_BIN");
    if (!bin || !bin[0] || access(bin, X_OK) != 0) GTEST_SKIP() << "PARLEYD_BIN not set";
    parleyd_ = bin;
    CliHarness::SetUp();
    StartServer("127.0.0.1:0");
  }
  void TearDown() override {
    StopServer(SIGTERM);
    if (!dir_.empty()) CliHarness::TearDown();
  }
  std::string ServerUrl() override { return "http://" + listen_; }

  // Starts parleyd on `listen` with the test's data directory and waits for its
  // "listening on HOST:PORT" line.
  void StartServer(const std::string& listen) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      std::string out = dir_ + "/parleyd" + std::to_string(++starts_) + ".out";
      std::string err = dir_ + "/parleyd" + std::to_string(starts_) + ".err";
      std::vector<std::string> args{parleyd_, "--listen", listen, "--data-dir", dir_ + "/data"};
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int rc = posix_spawn(&server_pid_, parleyd_.c_str(), &fa, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      ASSERT_EQ(rc, 0);
      static const std::regex kListening(R"(listening on (\S+:\d+))");
      for (int i = 0; i < 200; ++i) {
        std::smatch m;
        std::string text = Slurp(out);
        if (std::regex_search(text, m, kListening)) {
          listen_ = m[1];
          return;
        }
        int status = 0;
        if (waitpid(server_pid_, &status, WNOHANG) == server_pid_) break;  // exited
        std::this_thread::sleep_for(50ms);
      }
      StopServer(SIGKILL);
      std::this_thread::sleep_for(250ms);  // e.g. the port is not free yet after a restart
    }
    FAIL() << "parleyd did not start on " << listen;
  }

  void StopServer(int sig) {
    if (server_pid_ <= 0) return;
    kill(server_pid_, sig);
    int status = 0;
    waitpid(server_pid_, &status, 0);
    server_pid_ = -1;
  }

  std::string parleyd_;
  std::string listen_;
  pid_t server_pid_ = -1;
  int starts_ = 0;
};

TEST_F(ParleydCliTest, EndToEnd) {
  for (const char* user : {"alice", "bob"}) {
    Result r = Run({"register", user});
    ASSERT_EQ(r.code, 0) << r.err;
    r = Run({"--profile", user, "login", user});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  Result r = Run({"register", "alice"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: username_taken: ", 0), 0u) << r.err;

  r = Run({"--profile", "alice", "send", "bob", "hi bob"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(r.out, m, std::regex(R"(sent to bob: chat (\d+) seq 1 id \d+\n)")))
      << r.out;
  std::string chat = m[1];

  // First listen of a new device: the snapshot.
  r = Run({"--profile", "bob", "listen", "--count", "1", "--timeout", "10"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "[chat " + chat + " #1] alice -> bob: hi bob\n");
  r = Run({"--profile", "bob", "listen", "--count", "1", "--timeout", "0.5"});
  EXPECT_EQ(r.code, 3) << r.out << r.err;

  // A live listener keeps going across a kill -9 and restart of the server.
  Proc listener =
      Spawn({"--profile", "bob", "listen", "--count", "3", "--json", "--timeout", "30"});
  std::this_thread::sleep_for(700ms);
  ASSERT_EQ(Run({"--profile", "alice", "send", "bob", "one"}).code, 0);
  std::this_thread::sleep_for(300ms);
  std::string listen_addr = listen_;
  StopServer(SIGKILL);
  StartServer(listen_addr);
  ASSERT_EQ(listen_, listen_addr);
  r = Run({"--profile", "alice", "send", "--chat", chat, "two"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Run({"--profile", "alice", "send", "bob", "three"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Wait(listener);
  EXPECT_EQ(r.code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out << r.err;
  const char* bodies[] = {"one", "two", "three"};
  for (int i = 0; i < 3; ++i) {
    json::object o = json::parse(lines[i]).as_object();
    EXPECT_EQ(o["body"], json::value(bodies[i]));
    EXPECT_EQ(o["pts"], i + 2);
    EXPECT_EQ(o["seq"], i + 2);
  }

  r = Run({"--profile", "bob", "history", "alice", "--limit", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"[chat " + chat + " #3] alice -> bob: two",
                                                    "[chat " + chat + " #4] alice -> bob: three"}));
  r = Run({"--profile", "bob", "chats", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).as_object()["chats"].as_array().size(), 1u);

  r = Run({"--profile", "alice", "send", "carol", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_found: ", 0), 0u) << r.err;

  // logout closes the device's live connections with 4003.
  Proc revoked = Spawn({"--profile", "bob", "listen", "--timeout", "20"});
  std::this_thread::sleep_for(700ms);
  r = Run({"--profile", "bob", "logout"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = Wait(revoked);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("parley: token_revoked: "), std::string::npos) << r.err;
  r = Run({"--profile", "bob", "chats"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_logged_in: ", 0), 0u) << r.err;
}

// Group commands end to end: roles, membership changes, group messages through send --chat,
// listen and history, and the server's refusals as exit 1 with the server's code.
TEST_F(ParleydCliTest, Groups) {
  for (const char* user : {"alice", "bob", "carol"}) RegisterAndLogin(user);
  auto as = [](const std::string& user, std::vector<std::string> args) {
    args.insert(args.begin(), {"--profile", user});
    return args;
  };

  Result r = Run(as("alice", {"group", "create", "team", "--members", "bob"}));
  ASSERT_EQ(r.code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(r.out, m, std::regex(R"(group (\d+) "team": 2 members\n)")))
      << r.out;
  std::string chat = m[1];
  std::string group = "group " + chat + " \"team\"";

  r = Run(as("alice", {"group", "add", chat, "carol"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "added carol to " + group + ": 3 members\n");
  r = Run(as("alice", {"group", "add", chat, "carol"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: conflict: ", 0), 0u) << r.err;
  r = Run(as("alice", {"group", "promote", chat, "bob"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "promoted bob to admin in " + group + "\n");
  r = Run(as("carol", {"group", "promote", chat, "carol"}));  // members cannot
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: forbidden: ", 0), 0u) << r.err;

  r = Run(as("carol", {"group", "info", chat}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{
                              group + ": 3 members, last #3, full history off", "USER   ROLE",
                              "alice  owner", "bob    admin", "carol  member"}));
  r = Run(as("carol", {"group", "info", chat, "--json"}));
  EXPECT_EQ(r.code, 0) << r.err;
  json::object info = json::parse(r.out).as_object()["chat"].as_object();
  EXPECT_EQ(info["chat_id"].as_int64(), std::stoll(chat));
  EXPECT_EQ(info["member_count"], 3);
  std::map<std::string, std::string> roles;
  for (const auto& member : info["members"].as_array()) {
    roles[std::string(member.at("user").as_string())] = member.at("role").as_string();
  }
  EXPECT_EQ(roles, (std::map<std::string, std::string>{
                       {"alice", "owner"}, {"bob", "admin"}, {"carol", "member"}}));

  // A group message reaches another member's listen with its chat id and sender; carol's
  // first listen (the snapshot) is drained first so the second one is live.
  r = Run(as("carol", {"listen", "--timeout", "1.5"}));
  EXPECT_EQ(r.code, 0) << r.err;
  Proc listener = Spawn(as("carol", {"listen", "--count", "2", "--timeout", "20"}));
  std::this_thread::sleep_for(700ms);
  r = Run(as("bob", {"send", "--chat", chat, "hi team"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("sent to chat " + chat + ": chat " + chat + " seq 4 id ", 0), 0u) << r.out;
  r = Run(as("alice", {"send", "--chat", chat, "hi bob"}));
  ASSERT_EQ(r.code, 0) << r.err;
  r = Wait(listener);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"[chat " + chat + " #4] bob: hi team",
                                                    "[chat " + chat + " #5] alice: hi bob"}));
  r = Run(as("bob", {"history", "--chat", chat, "--limit", "3"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(
      Lines(r.out),
      (std::vector<std::string>{
          "[chat " + chat +
              " #3] alice (event): "
              "{\"event\":\"role_changed\",\"by\":\"alice\",\"user\":\"bob\",\"role\":\"admin\"}",
          "[chat " + chat + " #4] bob: hi team", "[chat " + chat + " #5] alice: hi bob"}));

  // Removed: carol is a non-member now.
  r = Run(as("bob", {"group", "remove", chat, "carol", "--json"}));
  EXPECT_EQ(r.code, 0) << r.err;
  json::object removed = json::parse(r.out).as_object();
  EXPECT_EQ(removed["chat"].as_object()["member_count"], 2);
  EXPECT_EQ(removed["seq"], 6);
  r = Run(as("carol", {"group", "info", chat}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("parley: forbidden: ", 0), 0u) << r.err;
  r = Run(as("carol", {"send", "--chat", chat, "still here?"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: forbidden: ", 0), 0u) << r.err;

  // The rest of the lifecycle.
  r = Run(as("alice", {"group", "rename", chat, "crew"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "renamed group " + chat + " to \"crew\"\n");
  group = "group " + chat + " \"crew\"";
  r = Run(as("bob", {"group", "settings", chat, "--full-history", "on"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, group + ": full history on\n");
  r = Run(as("alice", {"group", "demote", chat, "bob"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "demoted bob to member in " + group + "\n");
  r = Run(as("alice", {"group", "leave", chat}));  // the owner hands over first
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: forbidden: ", 0), 0u) << r.err;
  r = Run(as("alice", {"group", "transfer", chat, "bob"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "transferred " + group + " to bob\n");
  r = Run(as("alice", {"group", "leave", chat}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "left " + group + "\n");
  r = Run(as("bob", {"group", "info", chat}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{group + ": 1 member, last #11, full history on",
                                                    "USER  ROLE", "bob   owner"}));
  r = Run(as("bob", {"group", "delete", chat}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "deleted " + group + "\n");
  r = Run(as("bob", {"group", "info", chat}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("parley: not_found: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace parley
