#include "cli/output.h"

#include <cstdio>
#include <ctime>
#include <iterator>

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

// The text of a message after "sender: ": the body, or a media message's descriptor.
std::string Text(const Message& m) {
  if (m.media) return HumanMedia(*m.media);
  return EscapeControl(m.body);
}

// "alice -> bob: hi", "bob: hi all" (group), "alice (event): {...}"
std::string SenderAndText(const Message& m) {
  std::string line = EscapeControl(m.sender);
  if (m.kind == "event") return line + " (event): " + EscapeControl(m.event);
  if (!m.to.empty()) line += " -> " + EscapeControl(m.to);
  return line + ": " + Text(m);
}

std::string Dimensions(int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) return {};
  return std::to_string(width) + "x" + std::to_string(height);
}

}  // namespace

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1023.95 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", value, kUnits[unit]);
  return buf;
}

std::string HumanMedia(const MediaRef& media) {
  std::string out = "[" + EscapeControl(media.kind.empty() ? "file" : media.kind);
  if (!media.name.empty()) out += " " + EscapeControl(media.name);
  if (std::string dims = Dimensions(media.width, media.height); !dims.empty()) out += " " + dims;
  out += " " + FormatBytes(media.size) + " id=" + EscapeControl(media.id) + "]";
  if (!media.caption.empty()) out += " " + EscapeControl(media.caption);
  return out;
}

std::string HumanMediaInfo(const MediaInfo& media) {
  std::string out = EscapeControl(media.type.empty() ? media.kind : media.type);
  if (std::string dims = Dimensions(media.width, media.height); !dims.empty()) out += " " + dims;
  return out + " " + FormatBytes(media.size) + ", id " + EscapeControl(media.id);
}

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
  if (chat.unread > 0) line += "  " + std::to_string(chat.unread) + " unread";
  if (chat.last_message) {
    const Message& m = *chat.last_message;
    line += "  " + EscapeControl(m.sender) +
            (m.kind == "event" ? " (event): " + EscapeControl(m.event) : ": " + Text(m));
  }
  return line;
}

std::string HumanUnread(const ChatList& list) {
  if (list.unread_total <= 0) return "unread: none";
  return "unread: " + std::to_string(list.unread_total) +
         (list.unread_total == 1 ? " message in " : " messages in ") +
         std::to_string(list.unread_chats) + (list.unread_chats == 1 ? " chat" : " chats");
}

std::string Unavailable(const std::vector<int64_t>& chats) {
  std::string ids;
  for (int64_t id : chats) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
  return std::to_string(chats.size()) + (chats.size() == 1 ? " chat" : " chats") +
         " cannot be read now (the server's storage that holds them is down; try again "
         "later): " +
         ids;
}

std::string HumanReceipt(const Receipt& r) {
  return "receipt chat " + std::to_string(r.chat_id) + ": " + EscapeControl(r.user) + " " +
         EscapeControl(r.kind) + " up to " + std::to_string(r.seq);
}

std::string HumanTyping(const TypingEvent& t) {
  return "typing chat " + std::to_string(t.chat_id) + ": " + EscapeControl(t.user) + " " +
         ToString(t.state);
}

std::string HumanPresence(const PresenceStatus& p) {
  std::string line = "presence " + EscapeControl(p.user) + ": ";
  if (p.hidden) return line + "hidden";
  if (p.online) return line + "online";
  line += "offline";
  if (p.last_seen > 0) line += ", last seen " + UtcTime(p.last_seen);
  return line;
}

std::string JsonReceipt(const Receipt& r, std::optional<int64_t> pts) {
  boost::json::object o;
  o["type"] = "receipt";
  o["pts"] = pts ? boost::json::value(*pts) : boost::json::value();
  o["receipt"] = wire::ToJson(r);
  return boost::json::serialize(o);
}

std::string JsonTyping(const TypingEvent& t) {
  boost::json::object o;
  o["type"] = "typing";
  for (auto& field : wire::ToJson(t)) o[field.key()] = field.value();
  return boost::json::serialize(o);
}

std::string JsonPresence(const std::vector<PresenceStatus>& presence) {
  boost::json::array list;
  for (const PresenceStatus& p : presence) list.push_back(wire::ToJson(p));
  boost::json::object o;
  o["type"] = "presence";
  o["presence"] = std::move(list);
  return boost::json::serialize(o);
}

std::string UtcTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void PrintLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace parley::cli
