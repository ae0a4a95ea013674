-- The rows a direct send writes (bench/pg_ceiling, tools/pg_ceiling.sh), with the store's keys
-- (src/store/postgres/pg_migrations.cpp) but fewer columns and no other index: a lower bound on
-- PostgreSQL's work per message. 8 clients x 50 direct chats; chat c's users are u<c>a, u<c>b.
CREATE TABLE chats (id bigint PRIMARY KEY, last_seq bigint NOT NULL DEFAULT 0, last_ts bigint NOT NULL DEFAULT 0);
CREATE TABLE messages (chat_id bigint, seq bigint, message_id bigint NOT NULL, ts bigint NOT NULL, sender text COLLATE "C" NOT NULL, recipient text COLLATE "C", kind int NOT NULL, body bytea NOT NULL, client_msg_id text NOT NULL, PRIMARY KEY (chat_id, seq)) PARTITION BY HASH (chat_id);
CREATE TABLE messages_p0 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE messages_p1 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE messages_p2 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE messages_p3 PARTITION OF messages FOR VALUES WITH (MODULUS 4, REMAINDER 3);
CREATE TABLE user_logs (user_id text COLLATE "C" PRIMARY KEY, pts bigint NOT NULL DEFAULT 0);
CREATE TABLE updates (user_id text COLLATE "C", pts bigint, kind int NOT NULL, chat_id bigint NOT NULL, seq bigint NOT NULL, PRIMARY KEY (user_id, pts));
CREATE TABLE user_chats (user_id text COLLATE "C", chat_id bigint, read_seq bigint NOT NULL DEFAULT 0, PRIMARY KEY (user_id, chat_id));
CREATE TABLE idempotency (sender text COLLATE "C", client_msg_id text COLLATE "C", chat_id bigint, seq bigint, sender_pts bigint, PRIMARY KEY (sender, client_msg_id));
INSERT INTO chats (id) SELECT cl*100 + i FROM generate_series(0,7) cl, generate_series(0,49) i;
INSERT INTO user_logs SELECT 'u'||id||s FROM chats, (VALUES ('a'),('b')) v(s);
INSERT INTO user_chats SELECT 'u'||id||s, id FROM chats, (VALUES ('a'),('b')) v(s);
CREATE SEQUENCE s;
