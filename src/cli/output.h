// How the CLI prints messages, acks and chats: one line each, human or JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "parley/types.h"

namespace parley::cli {

// Control characters as \n, \r, \t or \xNN, so one message is one line.
std::string EscapeControl(std::string_view text);

// "[chat 12 #5] alice -> bob: hi bob"; in a group "[chat 31 #57] bob: hi all"; an event
// "[chat 31 #3] alice (event): {"event":"members_added","by":"alice","users":["carol"]}"
std::string HumanLine(const Message& m);
// The message object plus "pts" (null for snapshot messages and large-group messages, which
// are not in the update log) and, for snapshot messages, "snapshot":true.
std::string JsonLine(const Message& m, std::optional<int64_t> pts, bool snapshot);
// "sent to bob: chat 12 seq 5 id 7313459286409216001" (+ " (duplicate)")
std::string HumanAck(const Target& to, const SendAck& ack);
// "chat 12  with bob  last #5  alice: hi bob", "chat 31  group team (large)  last #9  ..."
std::string HumanChat(const ChatSummary& chat);

// Writes line + '\n' to stdout and flushes (output may be a pipe read line by line).
void PrintLine(const std::string& line);

}  // namespace parley::cli
