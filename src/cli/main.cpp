// parley: command-line client for parleyd. The interface is documented in docs/CLIENT.md.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "cli/profile.h"
#include "parley/error.h"

namespace {

using namespace parley::cli;

int Usage(const std::string& message) {
  std::cerr << "parley: usage: " << message << "\nRun with --help for more information.\n";
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parley: command-line client for a parleyd chat server", "parley"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command

  Globals g;
  app.add_option("--server", g.server,
                 std::string("server URL, http://HOST:PORT (default: the profile's, else ") +
                     kDefaultServer + ")")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->type_name("URL");
  app.add_option("--profile", g.profile, "profile name (default: default)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->type_name("NAME");
  app.add_flag("--json", g.json, "print JSON instead of text");
  app.add_flag("-v,--verbose", g.verbose, "report connection changes and warnings on stderr");

  std::string register_user;
  auto* reg =
      app.add_subcommand("register", "create a user (password from $PARLEY_PASSWORD or a prompt)");
  reg->add_option("USER", register_user, "user id to create")->required();

  LoginArgs login;
  auto* login_cmd = app.add_subcommand("login", "log in and save the token in the profile");
  login_cmd->add_option("USER", login.user, "user id")->required();
  login_cmd
      ->add_option("--device-name", login.device_name,
                   "device name shown to the user (default: parley-cli@HOSTNAME)")
      ->type_name("NAME");

  auto* logout_cmd = app.add_subcommand("logout", "revoke the profile's token and forget it");

  SendArgs send;
  std::vector<std::string> send_words;
  auto* send_cmd = app.add_subcommand(
      "send",
      "send a message: send USER TEXT | send --chat ID TEXT | send --file PATH (USER | --chat ID)");
  send_cmd->add_option("--chat", send.chat_id, "send to this chat id instead of a user")
      ->type_name("CHAT_ID");
  send_cmd
      ->add_option("--timeout", send.timeout_s,
                   "give up after SECONDS without an ack, or without upload progress (default 30)")
      ->type_name("SECONDS");
  send_cmd
      ->add_option("--file", send.file,
                   "upload this file and send it as a media message (no TEXT then)")
      ->type_name("PATH");
  send_cmd->add_option("--caption", send.caption, "with --file: a caption under the media")
      ->type_name("TEXT");
  send_cmd
      ->add_option("--type", send.content_type,
                   "with --file: declare the MIME type (checked by the server; default: detected)")
      ->type_name("MIME");
  send_cmd->add_option("ARGS", send_words, "USER TEXT, or TEXT with --chat; USER with --file");

  DownloadArgs download;
  auto* download_cmd =
      app.add_subcommand("download", "download a media object: download MEDIA_ID -o PATH");
  download_cmd->add_option("MEDIA_ID", download.media_id, "the media id (from a message)")
      ->required();
  download_cmd
      ->add_option("-o,--output", download.output,
                   "the file to write (an existing directory: NAME or MEDIA_ID in it)")
      ->required()
      ->type_name("PATH");
  download_cmd
      ->add_option("--name", download.name,
                   "the file name (in a directory given to -o; also sent to the server)")
      ->type_name("NAME");
  download_cmd->add_flag("--force", download.force, "overwrite an existing file");
  download_cmd->add_flag("--resume", download.resume,
                         "continue PATH.part of an interrupted --resume download");
  download_cmd
      ->add_option("--timeout", download.timeout_s,
                   "give up after SECONDS without progress (default 30)")
      ->type_name("SECONDS");

  auto* account_cmd = app.add_subcommand("account", "manage your account: parley account delete");
  account_cmd->require_subcommand(1);
  auto* account_delete = account_cmd->add_subcommand(
      "delete",
      "delete your account and the media only you used; asks the password "
      "($PARLEY_PASSWORD, a prompt, or a line of standard input)");

  ListenArgs listen;
  auto* listen_cmd = app.add_subcommand("listen", "print incoming messages, one per line");
  listen_cmd->add_option("--count", listen.count, "exit after N messages")->type_name("N");
  listen_cmd->add_option("--timeout", listen.timeout_s, "exit after SECONDS")->type_name("SECONDS");
  listen_cmd->add_flag("--events", listen.events,
                       "also print receipts, typing and presence changes (--count counts them)");
  listen_cmd
      ->add_option("--presence", listen.presence,
                   "with --events: whose presence to watch (default: your direct chats' peers)")
      ->delimiter(',')
      ->type_name("USER,...");

  HistoryArgs history;
  std::vector<std::string> history_words;
  auto* history_cmd = app.add_subcommand("history", "print a chat's messages, oldest first");
  history_cmd->add_option("USER", history_words, "the other user of a direct chat")->type_name("");
  history_cmd->add_option("--chat", history.chat_id, "the chat id instead of a user")
      ->type_name("CHAT_ID");
  history_cmd->add_option("--limit", history.limit, "at most N messages (default 50)")
      ->type_name("N");
  history_cmd->add_option("--before", history.before_seq, "only messages with seq < SEQ")
      ->type_name("SEQ");
  history_cmd->add_option("--timeout", history.timeout_s, "give up after SECONDS (default 10)")
      ->type_name("SECONDS");

  ChatsArgs chats;
  auto* chats_cmd = app.add_subcommand("chats", "list chats, most recent activity first");
  chats_cmd->add_option("--limit", chats.limit, "at most N chats (default 100)")->type_name("N");
  chats_cmd->add_option("--timeout", chats.timeout_s, "give up after SECONDS (default 10)")
      ->type_name("SECONDS");

  ReadArgs read;
  auto* read_cmd = app.add_subcommand("read", "mark a chat read: read CHAT_OR_USER [--seq N]");
  read_cmd
      ->add_option("CHAT_OR_USER", read.chat_or_user,
                   "a chat id (all digits), or a user for the direct chat with them")
      ->required();
  read_cmd->add_option("--seq", read.seq, "read up to SEQ (default: the last message)")
      ->type_name("SEQ");
  read_cmd->add_option("--timeout", read.timeout_s, "give up after SECONDS (default 10)")
      ->type_name("SECONDS");

  TypingArgs typing;
  auto* typing_cmd =
      app.add_subcommand("typing", "tell a chat you are typing: typing CHAT_OR_USER [start|stop]");
  typing_cmd
      ->add_option("CHAT_OR_USER", typing.chat_or_user,
                   "a chat id (all digits), or a user for the direct chat with them")
      ->required();
  typing_cmd->add_option("STATE", typing.state, "start (default) or stop")
      ->check(CLI::IsMember({"start", "stop"}));
  typing_cmd->add_option("--timeout", typing.timeout_s, "give up after SECONDS (default 10)")
      ->type_name("SECONDS");

  PresenceArgs presence;
  auto* presence_cmd =
      app.add_subcommand("presence", "print whether users are online: presence USER...");
  presence_cmd->add_option("USER", presence.users, "users to look at")->required();
  presence_cmd->add_flag("--follow", presence.follow, "keep printing changes");
  presence_cmd
      ->add_option("--timeout", presence.timeout_s,
                   "give up after SECONDS (default 10); with --follow: stop after SECONDS")
      ->type_name("SECONDS");

  SettingsArgs settings;
  auto* settings_cmd = app.add_subcommand("settings", "print or change your settings");
  settings_cmd->add_option("--presence", settings.presence, "who sees whether you are online")
      ->check(CLI::IsMember({"everyone", "contacts", "nobody"}))
      ->type_name("everyone|contacts|nobody");
  settings_cmd->add_option("--timeout", settings.timeout_s, "give up after SECONDS (default 10)")
      ->type_name("SECONDS");

  GroupArgs group;
  auto* group_cmd = app.add_subcommand("group", "manage group chats: parley group ACTION --help");
  group_cmd->require_subcommand(1);
  auto group_action = [&](const char* name, const char* help, bool with_chat) {
    auto* c = group_cmd->add_subcommand(name, help);
    if (with_chat) c->add_option("CHAT_ID", group.chat_id, "the group's chat id")->required();
    c->add_option("--timeout", group.timeout_s, "give up after SECONDS (default 10)")
        ->type_name("SECONDS");
    return c;
  };
  auto* group_create = group_action("create", "create a group; prints its chat id", false);
  group_create->add_option("NAME", group.name, "the group's name")->required();
  group_create->add_option("--members", group.users, "initial members besides you")
      ->delimiter(',')
      ->type_name("USER,...");
  group_action("rename", "rename a group (owner, admin)", true)
      ->add_option("NAME", group.name, "the new name")
      ->required();
  group_action("add", "add members (owner, admin)", true)
      ->add_option("USER", group.users, "users to add")
      ->required();
  group_action("remove", "remove a member (owner, admin)", true)
      ->add_option("USER", group.users, "the member")
      ->required();
  group_action("promote", "make a member an admin (owner)", true)
      ->add_option("USER", group.users, "the member")
      ->required();
  group_action("demote", "make an admin a member (owner)", true)
      ->add_option("USER", group.users, "the admin")
      ->required();
  group_action("leave", "leave a group (the owner must transfer first)", true);
  group_action("transfer", "make USER the owner; you become an admin (owner)", true)
      ->add_option("USER", group.users, "the new owner")
      ->required();
  group_action("delete", "delete a group; every member leaves (owner)", true);
  group_action("settings", "change a group's settings (owner, admin)", true)
      ->add_option("--full-history", group.full_history,
                   "on: new members read the history from the start")
      ->required()
      ->check(CLI::IsMember({"on", "off"}))
      ->type_name("on|off");
  group_action("info", "print a group and its members", true);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  try {
    ValidateProfileName(g.profile);
    if (reg->parsed()) return RunRegister(g, register_user);
    if (login_cmd->parsed()) return RunLogin(g, login);
    if (logout_cmd->parsed()) return RunLogout(g);
    if (send_cmd->parsed()) {
      if (send.chat_id < 0) return Usage("--chat needs a positive chat id");
      bool media = send_cmd->count("--file") > 0;
      if (media) {
        if (send.file.empty()) return Usage("--file needs a path");
        size_t want = send.chat_id > 0 ? 0 : 1;
        if (send_words.size() != want) {
          return Usage(
              "send --file PATH [--caption TEXT] USER | send --file PATH --chat CHAT_ID "
              "(the text of a media message goes in --caption)");
        }
        if (send.chat_id == 0) send.user = send_words[0];
        if (send.chat_id == 0 && send.user.empty()) return Usage("the user is empty");
        return RunSend(g, send);
      }
      if (send_cmd->count("--caption") > 0 || send_cmd->count("--type") > 0) {
        return Usage("--caption and --type go with --file");
      }
      size_t want = send.chat_id > 0 ? 1 : 2;
      if (send_words.size() != want) return Usage("send USER TEXT | send --chat CHAT_ID TEXT");
      if (send.chat_id == 0) send.user = send_words[0];
      send.text = send_words.back();
      if (send.text.empty()) return Usage("the message text is empty");
      return RunSend(g, send);
    }
    if (download_cmd->parsed()) {
      if (download.media_id.empty()) return Usage("MEDIA_ID is empty");
      if (download.output.empty()) return Usage("-o needs a path");
      return RunDownload(g, download);
    }
    if (account_delete->parsed()) return RunAccountDelete(g);
    if (listen_cmd->parsed()) return RunListen(g, listen);
    if (history_cmd->parsed()) {
      if (history.chat_id < 0) return Usage("--chat needs a positive chat id");
      size_t want = history.chat_id > 0 ? 0 : 1;
      if (history_words.size() != want) return Usage("history USER | history --chat CHAT_ID");
      if (history.chat_id == 0) history.user = history_words[0];
      if (history.limit < 1) return Usage("--limit must be at least 1");
      return RunHistory(g, history);
    }
    if (chats_cmd->parsed()) {
      if (chats.limit < 1) return Usage("--limit must be at least 1");
      return RunChats(g, chats);
    }
    if (read_cmd->parsed()) return RunRead(g, read);
    if (typing_cmd->parsed()) return RunTyping(g, typing);
    if (presence_cmd->parsed()) return RunPresence(g, presence);
    if (settings_cmd->parsed()) return RunSettings(g, settings);
    if (group_cmd->parsed()) {
      group.action = group_cmd->get_subcommands().at(0)->get_name();
      return RunGroup(g, group);
    }
    return Usage("no command");
  } catch (const UsageError& e) {
    return Usage(e.what());
  } catch (const parley::Error& e) {
    std::cerr << "parley: " << e.code() << ": " << e.message() << "\n";
    return kExitError;
  } catch (const std::exception& e) {
    std::cerr << "parley: internal: " << e.what() << "\n";
    return kExitError;
  }
}
