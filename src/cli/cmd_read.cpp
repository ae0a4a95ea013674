// parley history USER | history --chat CHAT_ID, and parley chats
#include <iostream>

#include <boost/json/serialize.hpp>

#include "cli/cli.h"
#include "cli/one_shot.h"
#include "cli/output.h"
#include "cli/profile.h"
#include "parley/wire.h"

namespace parley::cli {

int RunHistory(const Globals& g, const HistoryArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  Target chat = args.chat_id > 0 ? Target::Chat(args.chat_id) : Target::User(args.user);
  Profile profile = RequireLogin(g);
  OneShot session(g, profile, timeout);
  HistoryPage page = session.Wait(session.client().History(chat, args.before_seq, args.limit));
  if (g.json) {
    PrintLine(boost::json::serialize(wire::ToJson(page)));
    return kExitOk;
  }
  for (const Message& m : page.messages) PrintLine(HumanLine(m));  // oldest first
  if (page.has_more && !page.messages.empty()) {
    std::cerr << "parley: older messages exist: add --before " << page.messages.front().seq << "\n";
  }
  return kExitOk;
}

int RunChats(const Globals& g, const ChatsArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  Profile profile = RequireLogin(g);
  OneShot session(g, profile, timeout);
  ChatList list = session.Wait(session.client().Chats(args.limit));
  if (g.json) {
    PrintLine(boost::json::serialize(wire::ToJson(list)));
    return kExitOk;
  }
  for (const ChatSummary& c : list.chats) PrintLine(HumanChat(c));  // newest activity first
  PrintLine(HumanUnread(list));                                     // the badge, over all chats
  if (list.has_more) std::cerr << "parley: more chats exist: raise --limit\n";
  if (!list.unavailable.empty()) std::cerr << "parley: " << Unavailable(list.unavailable) << "\n";
  return kExitOk;
}

}  // namespace parley::cli
