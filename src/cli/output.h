// How the CLI prints messages, acks and chats: one line each, human or JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/types.h"

namespace parley::cli {

// Control characters as \n, \r, \t or \xNN, so one message is one line.
std::string EscapeControl(std::string_view text);

// "[chat 12 #5] alice -> bob: hi bob"; in a group "[chat 31 #57] bob: hi all"; an event
// "[chat 31 #3] alice (event): {"event":"members_added","by":"alice","users":["carol"]}";
// media "[chat 12 #6] alice -> bob: [image cat.jpg 1024x768 47.1 KiB id=9f86d0...] our cat"
std::string HumanLine(const Message& m);
// "[image cat.jpg 1024x768 47.1 KiB id=<the whole id>] our cat" (no caption: no text after ']')
std::string HumanMedia(const MediaRef& media);
// An upload's result: "image/png 1024x768 47.1 KiB, id <the whole id>"
std::string HumanMediaInfo(const MediaInfo& media);
// "512 B", "47.1 KiB", "3.0 MiB", "1.2 GiB"
std::string FormatBytes(int64_t bytes);
// The message object plus "pts" (null for snapshot messages and large-group messages, which
// are not in the update log) and, for snapshot messages, "snapshot":true.
std::string JsonLine(const Message& m, std::optional<int64_t> pts, bool snapshot);
// "sent to bob: chat 12 seq 5 id 7313459286409216001" (+ " (duplicate)")
std::string HumanAck(const Target& to, const SendAck& ack);
// "chat 12  with bob  last #5  alice: hi bob", "chat 31  group team (large)  last #9  ..."
std::string HumanChat(const ChatSummary& chat);

// "unread: 2 messages in 1 chat", "unread: none": the badge of `chats`.
std::string HumanUnread(const ChatList& list);
// "N chats cannot be read now ...: ids" for the chats a cluster with a storage server down
// left out of an answer.
std::string Unavailable(const std::vector<int64_t>& chats);

// listen --events (PROTOCOL.md §3.11-3.13).
// "receipt chat 12: bob read up to 5" / "... bob delivered up to 5"
std::string HumanReceipt(const Receipt& r);
// "typing chat 12: alice start"
std::string HumanTyping(const TypingEvent& t);
// "presence bob: online", "presence carol: offline, last seen 2024-11-28T05:18:20Z",
// "presence dave: hidden"
std::string HumanPresence(const PresenceStatus& p);
// The push objects: {"type":"receipt","pts":47,"receipt":{...}} (pts null without one),
// {"type":"typing","chat_id":12,...}, {"type":"presence","presence":[...]}.
std::string JsonReceipt(const Receipt& r, std::optional<int64_t> pts);
std::string JsonTyping(const TypingEvent& t);
std::string JsonPresence(const std::vector<PresenceStatus>& presence);
// ms since the epoch as "2024-11-28T05:18:20Z".
std::string UtcTime(int64_t ms);

// Writes line + '\n' to stdout and flushes (output may be a pipe read line by line).
void PrintLine(const std::string& line);

}  // namespace parley::cli
