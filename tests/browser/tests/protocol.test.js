// The protocol module (web/parley-client.js) on its own, in node against a real parleyd.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, nodeClient, parley, registerUser, waitEvent } from '../lib/api.js';
import { startServer } from '../lib/server.js';
import WebSocket from 'ws';

describe('protocol module', { timeout: 60000 }, () => {
  let server;
  const clients = [];
  const track = (c) => { clients.push(c); return c; };

  before(async () => { server = await startServer(); });
  after(async () => {
    for (const c of clients) c.stop();
    if (server) await server.stop();
  });

  test('pure helpers: backoff bounds and the pts rule', () => {
    const p = { minMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.5 };
    assert.equal(parley.backoffDelay(p, 0, 0), 100);
    assert.equal(parley.backoffDelay(p, 3, 0), 800);
    assert.equal(parley.backoffDelay(p, 10, 0), 1000);
    assert.equal(parley.backoffDelay(p, 10, 0.999999) >= 500, true);
    assert.equal(parley.backoffDelay(p, 0, 0.999999) >= 50, true);
    const applied = [];
    let syncs = 0;
    const s = new parley.UpdateSequencer({ cursor: 5, apply: (u) => applied.push(u.pts), needSync: () => syncs++ });
    s.push({ pts: 5 });
    s.push({ pts: 6 });
    s.push({ pts: 8 });
    assert.deepEqual(applied, [6]);
    assert.equal(syncs, 1);
    s.push({ pts: 7 });
    assert.deepEqual(applied, [6, 7, 8]);
    assert.equal(s.hasGap, false);
    const fresh = new parley.UpdateSequencer({ cursor: null, apply: (u) => applied.push(u.pts), needSync: () => syncs++ });
    fresh.push({ pts: 3 });
    fresh.push({ pts: 4 });
    fresh.reset(3);
    assert.deepEqual(applied.slice(3), [4]);
  });

  test('HTTP errors carry the server code', async () => {
    await registerUser(server, 'erin');
    await assert.rejects(parley.register(server.url, 'erin', PASSWORD), { code: 'username_taken', status: 409 });
    await assert.rejects(parley.login(server.url, 'erin', 'wrong password!'), { code: 'invalid_credentials', status: 401 });
    await assert.rejects(parley.register(server.url, 'x', PASSWORD), { code: 'invalid_username' });
    await assert.rejects(parley.register(server.url, 'frank', 'short'), { code: 'weak_password' });
    await assert.rejects(parley.uploadMedia(server.url, 'pt_bad', new Uint8Array([1, 2, 3])), { code: 'unauthorized' });
  });

  test('send, receive, idempotent retry, receipts, typing, errors', async () => {
    const a = await registerUser(server, 'alice');
    const b = await registerUser(server, 'bob');
    const alice = track(await nodeClient(server, a));
    const bob = track(await nodeClient(server, b));

    const got = waitEvent(bob, 'message', (m) => m.body === 'hi bob');
    const own = waitEvent(alice, 'message', (m, info) => info.source === 'own');
    const ack = await alice.send('bob', 'hi bob', { clientMsgId: 'c-1' });
    assert.equal(ack.seq, 1);
    assert.equal(ack.duplicate, false);
    const [m] = await got;
    assert.equal(m.sender, 'alice');
    assert.equal(m.to, 'bob');
    const [mine] = await own;
    assert.equal(mine.client_msg_id, 'c-1');

    const again = await alice.send('bob', 'hi bob', { clientMsgId: 'c-1' });
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, ack.seq);
    assert.equal(again.message_id, ack.message_id);

    const receipt = waitEvent(alice, 'receipt', (r) => r.kind === 'read' && r.user === 'bob');
    const r = await bob.markRead(ack.chat_id);
    assert.equal(r.unread, 0);
    assert.equal((await receipt)[0].seq, 1);

    const typing = waitEvent(bob, 'typing', (t) => t.user === 'alice' && t.state === 'start');
    assert.equal(await alice.typing('bob', 'start'), true);
    assert.equal((await typing)[0].chat_id, ack.chat_id);

    await assert.rejects(alice.send('nobody-here', 'x'), { code: 'not_found' });
    await assert.rejects(alice.send('alice', 'x'), { code: 'bad_request' });
    await assert.rejects(alice.history(99999), (e) => ['not_found', 'forbidden'].includes(e.code));

    const list = await bob.chats();
    assert.equal(list.chats[0].peer, 'alice');
    assert.equal(list.chats[0].unread, 0);
  });

  test('a device that was away syncs from its cursor, in order', async () => {
    const c = await registerUser(server, 'carol');
    const d = await registerUser(server, 'dave');
    const carol = track(await nodeClient(server, c));
    let dave = track(await nodeClient(server, d));
    const one = waitEvent(dave, 'message', (m) => m.body === 'one');
    await carol.send('dave', 'one');
    await one;
    const cursor = dave.cursor;
    dave.stop();
    for (const body of ['two', 'three', 'four']) await carol.send('dave', body);
    const seen = [];
    dave = track(new parley.ParleyClient({ server: server.url, token: d.token, cursor, WebSocket }));
    dave.on('message', (m, info) => seen.push([m.body, info.source]));
    const synced = waitEvent(dave, 'synced');
    dave.start();
    await synced;
    assert.deepEqual(seen, [['two', 'sync'], ['three', 'sync'], ['four', 'sync']]);
    assert.equal(dave.cursor, cursor + 3);
  });

  test('reconnect: a send made while disconnected goes out once, after the reconnect', async () => {
    const e = await registerUser(server, 'eve');
    const f = await registerUser(server, 'fred');
    const eve = track(await nodeClient(server, e, { backoff: { minMs: 50, maxMs: 200 } }));
    const fred = track(await nodeClient(server, f));
    const states = [];
    eve.on('state', (s) => states.push(s.state));
    eve.drop('test');
    assert.equal(eve.state, 'waiting');
    const sent = eve.send('fred', 'while away');
    const arrived = waitEvent(fred, 'message', (m) => m.body === 'while away');
    const ack = await sent;
    await arrived;
    assert.deepEqual(states.slice(0, 3), ['waiting', 'connecting', 'online']);
    const h = await fred.history('eve');
    assert.equal(h.messages.filter((m) => m.body === 'while away').length, 1);
    assert.equal(ack.seq, 1);
  });

  test('groups, media upload and download', async () => {
    const g = await registerUser(server, 'gina');
    const h = await registerUser(server, 'hank');
    const gina = track(await nodeClient(server, g));
    const hank = track(await nodeClient(server, h));
    const created = waitEvent(hank, 'message', (m) => m.kind === 'event' && m.event.event === 'created');
    const ownEvent = waitEvent(gina, 'message', (m) => m.kind === 'event');
    const r = await gina.groupCreate('team', ['hank']);
    assert.equal(r.chat.name, 'team');
    await created;
    await ownEvent; // the creator's own event comes through its log (sync)
    const info = await hank.groupInfo(r.chat.chat_id);
    assert.deepEqual(info.members.map((m) => m.user).sort(), ['gina', 'hank']);

    const bytes = new TextEncoder().encode('hello, a text file\n');
    const up = await gina.uploadMedia(new Blob([bytes], { type: 'text/plain' }));
    assert.equal(up.kind, 'file');
    const media = waitEvent(hank, 'message', (m) => m.kind === 'media');
    const ownMedia = waitEvent(gina, 'message', (m) => m.kind === 'media');
    await gina.sendMedia(r.chat.chat_id, { id: up.id, name: 'notes.txt', caption: 'read me' });
    const [m] = await media;
    assert.equal(m.media.name, 'notes.txt');
    assert.equal(m.media.caption, 'read me');
    assert.equal((await ownMedia)[0].media.id, up.id);
    const blob = await hank.downloadMedia(m.media.id);
    assert.equal(await blob.text(), 'hello, a text file\n');
    const signed = await hank.signMediaUrl(m.media.id);
    assert.match(signed.url, /^http:\/\/127\.0\.0\.1:\d+\/v1\/media\/[0-9a-f]{64}\?exp=/);
  });
});
