#include "cli/output.h"

#include <cstdio>

#include <boost/json/serialize.hpp>

#include "parley/wire.h"

namespace parley::cli {

std::string EscapeControl(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

namespace {

// "alice -> bob: hi", "bob: hi all" (group), "alice (event): {...}"
std::string SenderAndText(const Message& m) {
  std::string line = EscapeControl(m.sender);
  if (m.kind == "event") return line + " (event): " + EscapeControl(m.event);
  if (!m.to.empty()) line += " -> " + EscapeControl(m.to);
  return line + ": " + EscapeControl(m.body);
}

}  // namespace

std::string HumanLine(const Message& m) {
  return "[chat " + std::to_string(m.chat_id) + " #" + std::to_string(m.seq) + "] " +
         SenderAndText(m);
}

std::string JsonLine(const Message& m, std::optional<int64_t> pts, bool snapshot) {
  boost::json::object o = wire::ToJson(m);
  o["pts"] = pts ? boost::json::value(*pts) : boost::json::value();
  if (snapshot) o["snapshot"] = true;
  return boost::json::serialize(o);
}

std::string HumanAck(const Target& to, const SendAck& ack) {
  std::string who = to.is_chat() ? "chat " + std::to_string(to.chat_id) : to.user;
  return "sent to " + who + ": chat " + std::to_string(ack.chat_id) + " seq " +
         std::to_string(ack.seq) + " id " + ack.message_id + (ack.duplicate ? " (duplicate)" : "");
}

std::string HumanChat(const ChatSummary& chat) {
  std::string line = "chat " + std::to_string(chat.chat_id);
  if (chat.kind == "group") {
    line += "  group " + EscapeControl(chat.name);
    if (chat.large) line += " (large)";
    if (!chat.member) line += " (left)";
  } else if (!chat.peer.empty()) {
    line += "  with " + EscapeControl(chat.peer);
  }
  line += "  last #" + std::to_string(chat.last_seq);
  if (chat.last_message) {
    const Message& m = *chat.last_message;
    line +=
        "  " + EscapeControl(m.sender) +
        (m.kind == "event" ? " (event): " + EscapeControl(m.event) : ": " + EscapeControl(m.body));
  }
  return line;
}

void PrintLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace parley::cli
