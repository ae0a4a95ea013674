#include "core/chat_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdint>

#include "common/clock.h"
#include "core/media_descriptor.h"

namespace parley::core {
namespace {

std::vector<Recipient> recipients_of(const std::vector<store::Delivery>& deliveries) {
  std::vector<Recipient> out;
  out.reserve(deliveries.size());
  for (const auto& d : deliveries) out.push_back(Recipient{d.user, d.pts});
  return out;
}

}  // namespace

ChatService::ChatService(store::Store& store, Router& router, SnowflakeGenerator& ids,
                         const Config& config)
    : store_(store), router_(router), ids_(ids), config_(config) {}

void ChatService::send(const std::string& sender, uint64_t conn_id, proto::SendRequest req,
                       CommitCallback done) {
  store::AppendRequest append;
  append.sender = sender;
  append.to_user = std::move(req.to);
  append.chat_id = req.chat_id;
  append.body = std::move(req.body);
  append.client_msg_id = std::move(req.client_msg_id);
  if (!req.media) return commit_send(std::move(append), conn_id, std::move(done));

  // A media message: the sender must be able to read the object (it uploaded it, or it is
  // forwarding one from a chat it is in); the descriptor comes from the upload's record.
  auto media = std::make_shared<proto::MediaSend>(std::move(*req.media));
  auto pending = std::make_shared<store::AppendRequest>(std::move(append));
  store_.media_access(
      sender, media->id, [this, sender, conn_id, media, pending, done](Result<bool> allowed) {
        if (!allowed) return done(allowed.error());
        if (!allowed.value())
          return done(Error{Errc::not_found, fmt::format("no media {}", media->id)});
        store_.get_media(media->id,
                         [this, conn_id, media, pending, done](Result<store::MediaRecord> rec) {
                           if (!rec) return done(rec.error());
                           pending->kind = store::MessageKind::media;
                           pending->body = media_descriptor_json(rec.value(), *media);
                           pending->media_ids.push_back(rec->id);
                           if (!rec->thumb_id.empty()) pending->media_ids.push_back(rec->thumb_id);
                           commit_send(std::move(*pending), conn_id, done);
                         });
      });
}

void ChatService::commit_send(store::AppendRequest append, uint64_t conn_id, CommitCallback done) {
  append.ts = now_ms();
  append.message_id = ids_.next(append.ts);
  store_.append_message(std::move(append), [this, conn_id, done](Result<store::AppendResult> r) {
    if (!r) return done(r.error());
    // Typing stops before the sender learns of the commit, so that a start it sends after
    // the answer is never cancelled by this message.
    if (!r->duplicate && on_sent_) on_sent_(r->message);
    done(Committed{proto::send_result_json(r.value()), r->sender_pts});
    if (r->duplicate) return;
    if (r->message.seq == 1 && !r->message.to.empty() && on_relations_changed_)
      on_relations_changed_({r->message.sender, r->message.to});  // a new direct chat
    // Encode the message once; each node builds its recipients' frames with their pts.
    std::string msg = proto::message_json(r->message);
    router_.deliver(Envelope::Payload::message, msg, recipients_of(r->deliveries), conn_id);
    // Large groups: one frame, shared by every subscriber's send queue.
    if (r->broadcast)
      router_.broadcast(r->message.chat_id, proto::chat_push(msg), conn_id, r->message.seq);
    // After the live pushes, so that a device connected now counts as reached.
    if (push_) push_->message_committed(r.value());
  });
}

void ChatService::snapshot(const std::string& user, bool limited, JsonCallback done) {
  store_.snapshot(user, config_.sync.snapshot_chats, config_.sync.snapshot_messages,
                  [this, limited, done](Result<store::Snapshot> s) {
                    if (!s) return done(s.error());
                    done(proto::snapshot_json(s.value(), limited, max_response_bytes()));
                  });
}

void ChatService::sync(const std::string& user, const proto::SyncRequest& req, JsonCallback done) {
  if (!req.pts) return snapshot(user, false, done);
  store_.read_updates(user, *req.pts, req.limit,
                      [this, user, done](Result<store::UpdatesPage> page) {
                        if (!page) return done(page.error());
                        if (page->limited) return snapshot(user, true, done);
                        done(proto::updates_json(page.value(), max_response_bytes()));
                      });
}

void ChatService::history(const std::string& user, const proto::HistoryRequest& req,
                          JsonCallback done) {
  store::HistoryQuery q{user, req.chat_id, req.with, req.before_seq, req.limit, req.after_seq};
  const bool forwards = req.after_seq.has_value();
  store_.history(std::move(q), [this, forwards, done](Result<store::HistoryPage> page) {
    if (!page) return done(page.error());
    done(proto::history_json(page.value(), forwards, max_response_bytes()));
  });
}

void ChatService::chats(const std::string& user, const proto::ChatsRequest& req,
                        JsonCallback done) {
  store_.list_chats(user, req.limit, req.cursor, [this, done](Result<store::ChatList> list) {
    if (!list) return done(list.error());
    done(proto::chats_json(list.value(), max_response_bytes()));
  });
}

void ChatService::group(const std::string& actor, uint64_t conn_id, proto::GroupRequest req,
                        CommitCallback done) {
  store::GroupRequest g;
  g.op = req.op;
  g.actor = actor;
  g.chat_id = req.chat_id;
  g.name = std::move(req.name);
  g.users = std::move(req.users);
  g.flag = req.full_history;
  g.ts = now_ms();
  g.message_id = ids_.next(g.ts);
  g.limits = store::GroupLimits{config_.groups.max_members, config_.groups.max_groups_per_user,
                                config_.groups.large_threshold, config_.groups.max_name_bytes};
  store_.group_op(std::move(g), [this, conn_id, done](Result<store::GroupResult> r) {
    if (!r) return done(r.error());
    done(Committed{proto::group_result_json(r.value()), r->event.sender_pts});
    if (on_relations_changed_ && (!r->joined.empty() || !r->left.empty())) {
      std::vector<std::string> changed = r->joined;
      changed.insert(changed.end(), r->left.begin(), r->left.end());
      on_relations_changed_(std::move(changed));
    }
    const auto& ev = r->event;
    std::string msg = proto::message_json(ev.message);
    router_.deliver(Envelope::Payload::message, msg, recipients_of(ev.deliveries), conn_id);
    if (!r->chat.large) return;
    // Who left stops receiving before the broadcast (their log has the event); who joined
    // starts after it (likewise). When the group just turned large, every member's log got
    // the event and every member's sessions subscribe now.
    auto chat = r->chat.chat_id;
    for (const auto& u : r->left) router_.subscribe(u, chat, false);
    router_.broadcast(chat, proto::chat_push(msg), conn_id, ev.message.seq);
    for (const auto& d : ev.deliveries)
      if (std::find(r->left.begin(), r->left.end(), d.user) == r->left.end())
        router_.subscribe(d.user, chat, true);
  });
}

void ChatService::group_info(const std::string& user, uint64_t chat_id, JsonCallback done) {
  store_.group_info(user, chat_id, [done](Result<store::ChatInfo> info) {
    if (!info) return done(info.error());
    done(proto::group_info_json(info.value()));
  });
}

void ChatService::large_groups(const std::string& user,
                               store::Callback<std::vector<store::ChatId>> done) {
  store_.member_groups(user, true, std::move(done));
}

void ChatService::mark(const std::string& user, uint64_t conn_id, proto::MarkRequest req,
                       CommitCallback done) {
  store::ReceiptRequest m{user, req.chat_id, std::move(req.with), req.kind, req.seq, now_ms()};
  store_.mark(std::move(m), [this, conn_id, done](Result<store::ReceiptResult> r) {
    if (!r) return done(r.error());
    done(Committed{proto::mark_result_json(r.value()), r->advanced ? r->user_pts : 0});
    if (!r->advanced) return;
    std::string receipt = proto::receipt_json(r->receipt);
    router_.deliver(Envelope::Payload::receipt, receipt, recipients_of(r->deliveries), conn_id);
    if (r->broadcast)
      router_.broadcast(r->receipt.chat_id, proto::receipt_push(0, receipt), conn_id);
  });
}

void ChatService::settings(const std::string& user, const proto::SettingsRequest& req,
                           JsonCallback done) {
  auto answer = [this, user, done] {
    store_.get_settings(user, [done](Result<store::UserSettings> s) {
      if (!s) return done(s.error());
      done(proto::settings_json(s.value()));
    });
  };
  auto set_push = [this, user, req, answer, done] {
    if (!req.dnd_until && !req.push_preview) return answer();
    store_.get_settings(user, [this, user, req, answer, done](Result<store::UserSettings> s) {
      if (!s) return done(s.error());
      store_.set_push_settings(user, req.dnd_until.value_or(s->dnd_until),
                               req.push_preview.value_or(s->push_preview),
                               [answer, done](Status st) {
                                 if (!st) return done(st.error());
                                 answer();
                               });
    });
  };
  if (!req.presence) return set_push();
  store_.set_presence_visibility(user, *req.presence, [this, user, set_push, done](Status st) {
    if (!st) return done(st.error());
    if (on_visibility_changed_) on_visibility_changed_(user);
    set_push();
  });
}

void ChatService::push_target(const std::string& user, const std::string& device_id,
                              const proto::PushRequest& req, JsonCallback done) {
  auto ok = [done](Status st) {
    if (!st) return done(st.error());
    done(std::string("{}"));
  };
  if (!req.register_target) return store_.remove_push_target(user, device_id, "", ok);
  store_.set_push_target(
      store::PushTarget{user, device_id, req.provider, req.token, req.app_id, now_ms()}, ok);
}

void ChatService::mute(const std::string& user, const proto::MuteRequest& req, JsonCallback done) {
  int64_t until = req.until == -1 ? INT64_MAX : req.until;
  auto apply = [this, user, until, done](store::ChatId chat) {
    store_.set_chat_mute(user, chat, until, [chat, until, done](Status st) {
      if (!st) return done(st.error());
      done(boost::json::serialize(boost::json::object{{"chat_id", chat}, {"muted_until", until}}));
    });
  };
  if (req.chat_id) return apply(req.chat_id);
  store_.audience(user, 0, req.with, [apply, with = req.with, done](Result<store::Audience> a) {
    if (!a) return done(a.error());
    if (a->chat_id == 0)
      return done(Error{Errc::not_found, fmt::format("no chat with {} yet", with)});
    apply(a->chat_id);
  });
}

void ChatService::current_pts(const std::string& user, store::Callback<uint64_t> done) {
  store_.current_pts(user, std::move(done));
}

void ChatService::chat_frames(const std::string& user, uint64_t chat_id, uint64_t after_seq,
                              uint32_t limit, std::function<void(Result<UpdateFrames>)> done) {
  store::HistoryQuery q;
  q.user = user;
  q.chat_id = chat_id;
  q.limit = limit;
  q.after_seq = after_seq;
  store_.history(std::move(q), [done](Result<store::HistoryPage> page) {
    if (!page) return done(page.error());
    UpdateFrames out;
    // The same bytes as the live broadcasts (commit_send, group).
    for (const auto& m : page->messages)
      out.updates.push_back(PtsFrame{
          m.seq, std::make_shared<const std::string>(proto::chat_push(proto::message_json(m))),
          ""});
    done(std::move(out));
  });
}

void ChatService::chat_position(const std::string& user, uint64_t chat_id,
                                std::function<void(Result<uint64_t>)> done) {
  store_.group_info(user, chat_id, [done](Result<store::ChatInfo> info) {
    if (!info) return done(info.error());
    done(info->last_seq);
  });
}

void ChatService::update_frames(const std::string& user, uint64_t after_pts, uint32_t limit,
                                std::function<void(Result<UpdateFrames>)> done) {
  store_.read_updates(user, after_pts, limit, [user, done](Result<store::UpdatesPage> page) {
    if (!page) return done(page.error());
    UpdateFrames out;
    out.limited = page->limited;
    out.updates.reserve(page->updates.size());
    // The same bytes as the live pushes (commit_send, mark): a device cannot tell them apart.
    for (const auto& u : page->updates) {
      const bool message = u.kind == store::UpdateKind::message;
      out.updates.push_back(
          PtsFrame{u.pts,
                   std::make_shared<const std::string>(
                       message ? proto::message_push(u.pts, proto::message_json(u.message))
                               : proto::receipt_push(u.pts, proto::receipt_json(u.receipt))),
                   message && u.message.sender == user ? u.message.client_msg_id : ""});
    }
    done(std::move(out));
  });
}

}  // namespace parley::core
