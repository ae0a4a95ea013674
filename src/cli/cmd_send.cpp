// parley send USER TEXT | send --chat CHAT_ID TEXT
// parley send --file PATH [--caption TEXT] [--type MIME] (USER | --chat CHAT_ID)
#include <filesystem>
#include <iostream>

#include <boost/json/serialize.hpp>

#include "cli/cli.h"
#include "cli/one_shot.h"
#include "cli/output.h"
#include "cli/profile.h"
#include "parley/http_api.h"
#include "parley/wire.h"

namespace parley::cli {

int RunSend(const Globals& g, const SendArgs& args) {
  auto timeout = Seconds(args.timeout_s, "--timeout");
  Target to = args.chat_id > 0 ? Target::Chat(args.chat_id) : Target::User(args.user);
  Profile profile = RequireLogin(g);
  if (args.file.empty()) {
    OneShot session(g, profile, timeout);
    SendAck ack = session.Wait(session.client().Send(to, args.text));
    PrintLine(g.json ? boost::json::serialize(wire::ToJson(ack)) : HumanAck(to, ack));
    return kExitOk;
  }

  // A media message: upload the file (streamed), then send a message that refers to it.
  HttpOptions http;
  http.timeout = timeout;  // per step of the upload: it may take longer while bytes move
  MediaInfo media = UploadMedia(profile.server, profile.token, args.file, args.content_type, http);
  if (g.verbose)
    std::cerr << "parley: uploaded " << args.file << ": " << HumanMediaInfo(media) << "\n";
  MediaSend send;
  send.id = media.id;
  send.name = std::filesystem::path(args.file).filename().string();
  send.caption = args.caption;
  OneShot session(g, profile, timeout);
  SendAck ack = session.Wait(session.client().SendMedia(to, send));
  if (g.json) {
    boost::json::object o = wire::ToJson(ack);
    o["media"] = wire::ToJson(media);
    PrintLine(boost::json::serialize(o));
  } else {
    PrintLine(HumanAck(to, ack) + " media " + media.id);
  }
  return kExitOk;
}

}  // namespace parley::cli
