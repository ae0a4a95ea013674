// A small in-process parleyd stand-in for client tests: HTTP register/login/logout/healthz and
// the parley.v1 WebSocket (auth, send, sync, history, chats, ping, message pushes, receipts,
// typing, presence, settings) on a loopback port, with hooks to inject faults. Test-only; not part
// of libparley.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parley/types.h"

namespace parley::testing {

class FakeServer {
 public:
  FakeServer();  // listens on 127.0.0.1:0 and serves on its own thread
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  uint16_t port() const;
  std::string url() const;  // http://127.0.0.1:<port>

  // Creates a user with password "password" and a device token.
  void AddUser(const std::string& user, const std::string& token);
  // Commits a message as if another device of `from` sent it; pushes it unless pushes are off.
  SendAck Inject(const std::string& from, const std::string& to, const std::string& body);

  // Moves `user`'s read or delivered position in a chat as if another device of theirs sent
  // mark_read / mark_delivered: receipts go to the update logs (read: both users, delivered:
  // the peer; large chats: pushed without pts) and are pushed unless pushes are off.
  void Mark(const std::string& user, int64_t chat_id, const std::string& kind, int64_t seq);

  // Makes a chat a large group: later messages skip the update logs and are pushed without
  // pts; `chats` lists it as {"kind":"group","name":"big","large":true}.
  void MarkLarge(int64_t chat_id);

  // Media (docs/MEDIA.md "HTTP API"): POST /v1/media (PNG is detected as an image with its
  // size from the header and gets a fake thumbnail; an ELF or an empty body is refused with
  // 415; anything else is text/plain), GET /v1/media/{id} (owner, or a member of a chat with a
  // media message of it; Range "bytes=N-"), POST /v1/media/{id}/url, DELETE /v1/account, and
  // `send` with `media`. Ids are the SHA-256 of the bytes.
  // Stores an object as if `owner` had uploaded it; returns its id.
  std::string AddMedia(const std::string& owner, const std::string& bytes,
                       const std::string& type = "text/plain");
  void SetMaxUpload(uint64_t bytes);  // 413 over this (default 1 MiB)
  void IgnoreExpect(bool on);         // never answer "100 Continue"
  void CutDownloads(bool on);         // downloads send half the body, then close
  bool HasMedia(const std::string& id);
  struct HttpRequestSeen {
    std::string method;
    std::string target;
    std::string content_type;
    std::string content_length;
    std::string expect;
    std::string range;
    size_t body_size = 0;
  };
  // The HTTP requests whose body was read (not those refused before it), in order.
  std::vector<HttpRequestSeen> HttpRequests();

  // Faults.
  void SetPushes(bool on);                // off: commits are not pushed (gaps)
  void Disable(const std::string& type);  // answer requests of this type with unknown_type
  void DropSendResponses(int n);          // swallow the next n send answers (still committed)
  void SetAccepting(bool on);             // off: new connections are closed at once
  void KillConnections();                 // close every socket abruptly
  void CloseConnections(uint16_t code);   // send a close frame on every connection
  void SendRaw(const std::string& user, const std::string& frame);  // to each of user's conns
  void Revoke(const std::string& token);  // token stops working, its conns get 4003

  // Observations.
  int SendRequests(const std::string& client_msg_id);        // send frames seen with this key
  int Requests(const std::string& type);                     // frames of this type seen
  std::vector<std::string> Frames(const std::string& type);  // their text, in order
  int Connections();                                         // WebSocket connections accepted
  int ChatMessages(const std::string& a, const std::string& b);
  int64_t Pts(const std::string& user);
  std::vector<int> CloseCodesReceived();  // close codes sent by clients

 private:
  struct State;
  std::shared_ptr<State> state_;
  void Run(std::function<void()> fn);  // runs fn on the server thread and waits
};

}  // namespace parley::testing
