-- One transaction of :n direct sends (pgbench -D n=...), each statement covering all of them:
-- the idempotency keys, the chats' seq, the messages, both members' update logs and entries,
-- the sender's read position. Client k sends in its own 50 chats (k < 8), so clients never
-- wait for each other's locks.
BEGIN;
INSERT INTO idempotency (sender, client_msg_id) SELECT 'u'||(:client_id*100+i)||'a', :client_id||'-'||nextval('s')||'-'||i FROM generate_series(0, :n - 1) i;
WITH c AS (UPDATE chats SET last_seq = last_seq + 1, last_ts = 1 WHERE id >= :client_id*100 AND id < :client_id*100 + :n RETURNING id, last_seq)
INSERT INTO messages SELECT id, last_seq, id*1000000+last_seq, 1, 'u'||id||'a', 'u'||id||'b', 0, convert_to(repeat('x', 64), 'UTF8'), 'x'||last_seq FROM c;
WITH l AS (UPDATE user_logs SET pts = pts + 1 WHERE user_id = ANY (SELECT 'u'||(:client_id*100+i)||s FROM generate_series(0, :n - 1) i, (VALUES ('a'),('b')) v(s)) RETURNING user_id, pts)
INSERT INTO updates SELECT user_id, pts, 1, 0, 0 FROM l;
UPDATE user_chats SET read_seq = read_seq + 1 WHERE chat_id >= :client_id*100 AND chat_id < :client_id*100 + :n AND user_id LIKE '%a';
COMMIT;
