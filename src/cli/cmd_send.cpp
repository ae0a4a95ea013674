// parley send USER TEXT | send --chat CHAT_ID TEXT
#include <boost/json/serialize.hpp>

#include "cli/cli.h"
#include "cli/one_shot.h"
#include "cli/output.h"
#include "cli/profile.h"
#include "parley/wire.h"

namespace parley::cli {

int RunSend(const Globals& g, const SendArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  Target to = args.chat_id > 0 ? Target::Chat(args.chat_id) : Target::User(args.user);
  Profile profile = RequireLogin(g);
  OneShot session(g, profile, timeout);
  SendAck ack = session.Wait(session.client().Send(to, args.text));
  PrintLine(g.json ? boost::json::serialize(wire::ToJson(ack)) : HumanAck(to, ack));
  return kExitOk;
}

}  // namespace parley::cli
