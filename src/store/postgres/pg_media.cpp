// Media records (docs/MEDIA.md): uploads, owner marks, references from messages, access
// checks and the sweep of unreferenced records. A sweep locks the records it removes (FOR
// UPDATE) and an append locks the ones it refers to (FOR SHARE): whichever commits first
// wins, and the other sees its outcome.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/clock.h"
#include "store/postgres/pg_internal.h"

namespace parley::store::pg {

namespace {

Error no_media(const std::string& id) {
  return Error{Errc::not_found, fmt::format("no such media {}", id)};
}

}  // namespace

bool valid_media_id(const std::string& id) { return !id.empty() && id.size() <= 255; }

Status put_media_record(PgConn& c, const MediaRecord& rec, const UserId& uploader,
                        bool check_user) {
  if (!valid_media_id(rec.id)) return Error{Errc::bad_request, "bad media id"};
  if (check_user && !live_user(c, uploader)) return no_user(uploader);
  // The same bytes again: only the upload time moves (forwards).
  c.q("INSERT INTO media (id, mime, kind, size, width, height, thumb_id, thumb_width, "
      "thumb_height, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
      "ON CONFLICT (id) DO UPDATE SET uploaded_at = greatest(media.uploaded_at, "
      "EXCLUDED.uploaded_at)",
      rec.id, rec.mime, rec.kind, rec.size, rec.width, rec.height, rec.thumb_id, rec.thumb_width,
      rec.thumb_height, rec.uploaded_at);
  c.q("INSERT INTO media_owners (media_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", rec.id,
      uploader);
  return ok_status();
}

MediaHolders media_holders(PgConn& c, const std::string& id, const UserId& user) {
  MediaHolders h;
  if (c.q("SELECT 1 FROM media WHERE id = $1", id).empty()) return h;
  h.exists = true;
  if (!c.q("SELECT 1 FROM media_owners WHERE media_id = $1 AND user_id = $2", id, user).empty()) {
    h.owner = true;
    return h;
  }
  auto chats = c.q("SELECT DISTINCT chat_id FROM media_refs WHERE media_id = $1", id);
  for (int i = 0; i < chats.rows(); ++i) h.chats.push_back(chats.u64(i, 0));
  return h;
}

void PgStore::put_media(MediaRecord record, UserId uploader, Callback<Unit> done) {
  submit<Unit>(
      true,
      [rec = std::move(record), uploader = std::move(uploader)](PgConn& c) -> Status {
        return put_media_record(c, rec, uploader, true);
      },
      std::move(done));
}

void PgStore::get_media(std::string id, Callback<MediaRecord> done) {
  submit<MediaRecord>(
      false,
      [id = std::move(id)](PgConn& c) -> Result<MediaRecord> {
        if (!valid_media_id(id)) return no_media(id);
        auto r =
            c.q("SELECT mime, kind, size, width, height, thumb_id, thumb_width, thumb_height, "
                "uploaded_at, EXISTS (SELECT 1 FROM media_refs f WHERE f.media_id = m.id) FROM "
                "media m WHERE id = $1",
                id);
        if (r.empty()) return no_media(id);
        MediaRecord m;
        m.id = id;
        m.mime = r.str(0, 0);
        m.kind = r.str(0, 1);
        m.size = r.u64(0, 2);
        m.width = static_cast<int32_t>(r.i64(0, 3));
        m.height = static_cast<int32_t>(r.i64(0, 4));
        m.thumb_id = r.str(0, 5);
        m.thumb_width = static_cast<int32_t>(r.i64(0, 6));
        m.thumb_height = static_cast<int32_t>(r.i64(0, 7));
        m.uploaded_at = r.i64(0, 8);
        m.referenced = r.boolean(0, 9);
        return m;
      },
      std::move(done));
}

void PgStore::media_access(UserId user, std::string id, Callback<bool> done) {
  submit<bool>(
      false,
      [user = std::move(user), id = std::move(id)](PgConn& c) -> Result<bool> {
        if (!valid_media_id(id)) return false;
        auto h = media_holders(c, id, user);
        if (h.owner) return true;
        // An active member of a chat where a message refers to it.
        for (ChatId chat : h.chats) {
          auto vis = visible_range(c, chat, user);
          if (vis && vis->member) return true;
        }
        return false;
      },
      std::move(done));
}

void PgStore::sweep_media(int64_t uploaded_before, uint32_t limit,
                          Callback<std::vector<std::string>> done) {
  submit<std::vector<std::string>>(
      true,
      [uploaded_before, limit](PgConn& c) -> Result<std::vector<std::string>> {
        std::vector<std::string> removed;
        if (limit == 0) return removed;
        // Candidates, oldest first; locked in id order (the order appends and user deletions
        // lock records in); then checked again in a statement of its own, which sees the
        // references of every append that committed while this one waited.
        // A pending mark (an append on another server refers to the record, its reference
        // on the way) holds it for an hour; older marks are of appends that failed.
        const int64_t pending_since = now_ms() - kPendingHoldMs;
        c.q("DELETE FROM media_pending WHERE created_at < $1", pending_since);
        auto cand =
            c.q("SELECT id FROM media m WHERE uploaded_at < $1 AND NOT EXISTS (SELECT 1 FROM "
                "media_refs f WHERE f.media_id = m.id) AND NOT EXISTS (SELECT 1 FROM "
                "media_pending p WHERE p.media_id = m.id) ORDER BY uploaded_at, id LIMIT $2",
                uploaded_before, int64_t(limit));
        if (cand.empty()) return removed;
        std::vector<std::string> ids;
        for (int i = 0; i < cand.rows(); ++i) ids.push_back(cand.str(i, 0));
        std::sort(ids.begin(), ids.end());
        c.q("SELECT id FROM media WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            PgTextArray{ids});
        auto gone = c.q(
            "DELETE FROM media m WHERE id = ANY($1::text[]) AND uploaded_at < $2 AND NOT EXISTS "
            "(SELECT 1 FROM media_refs f WHERE f.media_id = m.id) AND NOT EXISTS (SELECT 1 FROM "
            "media_pending p WHERE p.media_id = m.id) RETURNING id",
            PgTextArray{ids}, uploaded_before);
        for (int i = 0; i < gone.rows(); ++i) removed.push_back(gone.str(i, 0));
        if (!removed.empty())
          c.q("DELETE FROM media_owners WHERE media_id = ANY($1::text[])", PgTextArray{removed});
        return removed;
      },
      std::move(done));
}

}  // namespace parley::store::pg
