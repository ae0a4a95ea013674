#include "store/postgres/pg_migrations.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace parley::store::pg {
namespace {

// Text keys are COLLATE "C": byte order, the same on every server whatever its locale, so
// that the order rows are locked in (users sorted by id) and listed in is the same
// everywhere.
const char* const kV1 = R"sql(
CREATE TABLE users (
  id text COLLATE "C" PRIMARY KEY,
  password_hash text NOT NULL,
  created_at bigint NOT NULL,
  deleted boolean NOT NULL DEFAULT false,
  presence smallint NOT NULL DEFAULT 0,
  last_seen bigint NOT NULL DEFAULT 0,
  dnd_until bigint NOT NULL DEFAULT 0,
  push_preview boolean NOT NULL DEFAULT false);

-- The user's update-log position (pts, locked by every commit that appends to the log, so
-- that commits per user happen in pts order) and its number of active groups.
CREATE TABLE user_logs (
  user_id text COLLATE "C" PRIMARY KEY,
  pts bigint NOT NULL DEFAULT 0,
  group_count bigint NOT NULL DEFAULT 0);

CREATE TABLE devices (
  user_id text COLLATE "C" NOT NULL,
  device_id text COLLATE "C" NOT NULL,
  name text NOT NULL,
  token_hash text NOT NULL,
  created_at bigint NOT NULL,
  revoked boolean NOT NULL DEFAULT false,
  PRIMARY KEY (user_id, device_id));
CREATE INDEX devices_token ON devices (token_hash) WHERE NOT revoked;

CREATE SEQUENCE chat_ids;
-- last_seq is the chat's seq counter, locked by every commit that adds a message.
-- Direct chats keep their two members in peer_a/peer_b.
CREATE TABLE chats (
  id bigint PRIMARY KEY,
  kind smallint NOT NULL,
  name text NOT NULL DEFAULT '',
  created_by text NOT NULL,
  created_at bigint NOT NULL,
  last_seq bigint NOT NULL DEFAULT 0,
  last_ts bigint NOT NULL DEFAULT 0,
  member_count integer NOT NULL DEFAULT 0,
  large boolean NOT NULL DEFAULT false,
  full_history boolean NOT NULL DEFAULT false,
  deleted boolean NOT NULL DEFAULT false,
  peer_a text COLLATE "C",
  peer_b text COLLATE "C");

-- One direct chat per pair: user_a < user_b.
CREATE TABLE direct_pairs (
  user_a text COLLATE "C" NOT NULL,
  user_b text COLLATE "C" NOT NULL,
  chat_id bigint NOT NULL,
  PRIMARY KEY (user_a, user_b));

-- Hash-partitioned on chat_id (DESIGN.md §4), so that it can be distributed later.
CREATE TABLE messages (
  chat_id bigint NOT NULL,
  seq bigint NOT NULL,
  message_id bigint NOT NULL,
  ts bigint NOT NULL,
  sender text NOT NULL,
  recipient text NOT NULL DEFAULT '',
  kind smallint NOT NULL,
  body bytea NOT NULL,  -- exactly the bytes given (NUL included)
  client_msg_id text NOT NULL DEFAULT '',
  PRIMARY KEY (chat_id, seq)) PARTITION BY HASH (chat_id);
CREATE TABLE messages_p0 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE messages_p1 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE messages_p2 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE messages_p3 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 3);

CREATE TABLE members (
  chat_id bigint NOT NULL,
  user_id text COLLATE "C" NOT NULL,
  role smallint NOT NULL,
  joined_seq bigint NOT NULL,
  left_seq bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (chat_id, user_id));

CREATE TABLE user_chats (
  user_id text COLLATE "C" NOT NULL,
  chat_id bigint NOT NULL,
  kind smallint NOT NULL,
  peer text NOT NULL DEFAULT '',
  read_seq bigint NOT NULL DEFAULT 0,
  delivered_seq bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, chat_id));

-- kind 1: a message (chat_id, seq); 2, 3: a read / delivered receipt by by_user.
CREATE TABLE updates (
  user_id text COLLATE "C" NOT NULL,
  pts bigint NOT NULL,
  kind smallint NOT NULL,
  chat_id bigint NOT NULL,
  seq bigint NOT NULL,
  by_user text NOT NULL DEFAULT '',
  ts bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, pts));

-- Reserved (chat_id NULL) at the start of an append, filled in at its end, in one commit.
CREATE TABLE idempotency (
  sender text COLLATE "C" NOT NULL,
  client_msg_id text COLLATE "C" NOT NULL,
  chat_id bigint,
  seq bigint,
  sender_pts bigint,
  PRIMARY KEY (sender, client_msg_id));

CREATE TABLE media (
  id text COLLATE "C" PRIMARY KEY,
  mime text NOT NULL,
  kind text NOT NULL,
  size bigint NOT NULL,
  width integer NOT NULL,
  height integer NOT NULL,
  thumb_id text NOT NULL,
  thumb_width integer NOT NULL,
  thumb_height integer NOT NULL,
  uploaded_at bigint NOT NULL);
CREATE INDEX media_uploaded ON media (uploaded_at, id);
CREATE TABLE media_owners (
  media_id text COLLATE "C" NOT NULL,
  user_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (media_id, user_id));
CREATE INDEX media_owners_user ON media_owners (user_id);
CREATE TABLE media_refs (
  media_id text COLLATE "C" NOT NULL,
  sender text COLLATE "C" NOT NULL,
  chat_id bigint NOT NULL,
  PRIMARY KEY (media_id, sender, chat_id));
CREATE INDEX media_refs_sender ON media_refs (sender);

CREATE TABLE push_targets (
  user_id text COLLATE "C" NOT NULL,
  device_id text COLLATE "C" NOT NULL,
  provider smallint NOT NULL,
  token text NOT NULL,
  app_id text NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (user_id, device_id));
CREATE TABLE push_mutes (
  user_id text COLLATE "C" NOT NULL,
  chat_id bigint NOT NULL,
  muted_until bigint NOT NULL,
  PRIMARY KEY (user_id, chat_id));
CREATE TABLE push_jobs (
  user_id text COLLATE "C" NOT NULL,
  device_id text COLLATE "C" NOT NULL,
  chat_id bigint NOT NULL,
  count integer NOT NULL,
  last_seq bigint NOT NULL,
  last_sender text NOT NULL,
  created_at bigint NOT NULL,
  due_at bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  version bigint NOT NULL,
  lease_until bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, device_id, chat_id));
CREATE INDEX push_jobs_due ON push_jobs (due_at, user_id, device_id, chat_id);
CREATE INDEX push_jobs_created ON push_jobs (created_at);
CREATE TABLE push_dead_letters (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL,
  device_id text NOT NULL,
  chat_id bigint NOT NULL,
  count integer NOT NULL,
  last_seq bigint NOT NULL,
  created_at bigint NOT NULL,
  attempts integer NOT NULL,
  failed_at bigint NOT NULL,
  error text NOT NULL);
)sql";

// Sharding (pg_placement.h): chat ids that carry their bucket, an index of each user's chats
// on the user's server, and the outbox that carries a chat's commits to the servers of its
// members.
const char* const kV2 = R"sql(
-- A chat id is counter * 1024 + bucket; the counter row moves with its bucket. Counters start
-- above every id the sequence of version 1 handed out.
CREATE TABLE bucket_counters (
  bucket integer PRIMARY KEY,
  next bigint NOT NULL);

-- On a user's server, user_chats also indexes the chats the user is in whose rows live on
-- other servers (their read positions stay with the chat). index_seq: the join or leave
-- event the index last applied; active: the user is a member after it.
ALTER TABLE user_chats ADD COLUMN index_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE user_chats ADD COLUMN active boolean NOT NULL DEFAULT true;

-- Entries a commit on a chat's server owes to other servers: update-log entries of members
-- (kind 1 message, 2/3 receipts), chat index rows (10 direct chat, 11 joined, 12 left) and
-- media references (13). One row per event and server (`server`: the place, in the list of
-- servers, of the users or media records in `targets`), applied there in id order per chat,
-- and removed once that server applied it: a server that is down holds up only its own rows.
CREATE TABLE outbox (
  chat_id bigint NOT NULL,
  id bigserial NOT NULL,
  server integer NOT NULL,
  kind smallint NOT NULL,
  seq bigint NOT NULL,
  by_user text NOT NULL DEFAULT '',
  ts bigint NOT NULL DEFAULT 0,
  targets text[] NOT NULL,
  note text NOT NULL DEFAULT '',  -- media_ref: the message's client_msg_id
  created_at bigint NOT NULL,
  PRIMARY KEY (chat_id, id));
CREATE INDEX outbox_server ON outbox (chat_id, server, id);
CREATE INDEX outbox_created ON outbox (created_at);

-- On a media record's server: an append on another server refers to it (its reference
-- follows through the outbox, and replaces this row). A sweep leaves a record alone while
-- one is younger than an hour.
CREATE TABLE media_pending (
  media_id text COLLATE "C" NOT NULL,
  sender text COLLATE "C" NOT NULL,
  client_msg_id text COLLATE "C" NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (media_id, sender, client_msg_id));
CREATE INDEX media_pending_sender ON media_pending (sender);

-- A replayed outbox entry finds the update it wrote before.
CREATE INDEX updates_event ON updates (user_id, chat_id, seq);

-- This server's place in the list of servers the store spans (pg_placement.h: 0-based place,
-- list size), recorded by the first open and checked by every later one: a node that lists
-- the servers in another order, or another number of them, would put rows on the wrong
-- server, and is refused. One row (`one` is always true). A single server is place 0 of 1.
CREATE TABLE parley_shard (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  place integer NOT NULL,
  servers integer NOT NULL);
)sql";

// Any constant: the key of the advisory lock that migrations take.
constexpr int64_t kMigrationLock = 0x7061726c6579;  // "parley"

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "initial schema", kV1},
      {2, "sharding: bucketed chat ids, chat index, outbox, the server's place", kV2},
  };
  return list;
}

Status migrate(PgConn& conn) {
  const auto& list = migrations();
  const int latest = list.empty() ? 0 : list.back().version;
  try {
    conn.run("BEGIN");
    try {
      conn.q("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
      conn.run(
          "CREATE TABLE IF NOT EXISTS parley_schema_migrations ("
          "version integer PRIMARY KEY, name text NOT NULL, "
          "applied_at timestamptz NOT NULL DEFAULT now())");
      auto r = conn.q("SELECT coalesce(max(version), 0) FROM parley_schema_migrations");
      int current = static_cast<int>(r.i64(0, 0));
      if (current > latest) {
        conn.run("ROLLBACK");
        return Error{Errc::unavailable,
                     fmt::format("the database schema is at version {}, newer than this "
                                 "parleyd knows (version {}): upgrade parleyd",
                                 current, latest)};
      }
      for (const auto& m : list) {
        if (m.version <= current) continue;
        spdlog::info("store: applying schema migration {} ({})", m.version, m.name);
        conn.run(m.sql);
        conn.q("INSERT INTO parley_schema_migrations (version, name) VALUES ($1, $2)",
               int64_t{m.version}, m.name);
      }
      conn.run("COMMIT");
    } catch (const PgError&) {
      if (conn.ok()) conn.run("ROLLBACK");
      throw;
    }
  } catch (const PgError& e) {
    return Error{Errc::unavailable, fmt::format("schema migration failed: {}", e.what())};
  }
  return ok_status();
}

Status check_place(PgConn& conn, const Placement& p, bool record) {
  const std::string where = conn.describe();
  try {
    if (record) {
      conn.q("INSERT INTO parley_shard (place, servers) VALUES ($1, $2) ON CONFLICT DO NOTHING",
             p.index, p.count);
    } else if (conn.q("SELECT to_regclass('parley_shard') IS NOT NULL").view(0, 0) != "t") {
      return ok_status();  // not migrated that far: nothing recorded yet
    }
    auto r = conn.q("SELECT place, servers FROM parley_shard");
    if (r.empty()) return ok_status();  // (record: the insert above made sure it is there)
    const int64_t place = r.i64(0, 0), servers = r.i64(0, 1);
    if (place == p.index && servers == p.count) return ok_status();
    std::string listed = servers == p.count ? fmt::format("shard {}", p.index + 1)
                                            : fmt::format("shard {} of {}", p.index + 1, p.count);
    return Error{Errc::unavailable,
                 fmt::format("postgres server {} is shard {} of {}, listed as {}: every node must "
                             "list cluster.postgres in the same order; to change the number of "
                             "shards, see docs/SCALING.md",
                             where, place + 1, servers, listed)};
  } catch (const PgError& e) {
    return Error{Errc::unavailable,
                 fmt::format("postgres server {}: reading its place: {}", where, e.what())};
  }
}

}  // namespace parley::store::pg
