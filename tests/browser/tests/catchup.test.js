// Catching up (issue 15): a device made by a login starts at the login's pts and receives
// every message that came after it as updates, however many; a device without a cursor gets
// a snapshot, and the conversation says how many older messages there are and loads them;
// an upload the operator's type list refuses names the type. Also the module's side of it.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { PASSWORD, nodeClient, parley, registerUser, waitEvent } from '../lib/api.js';
import { message, openChat, scenario, send, startChat, texts } from '../lib/env.js';
import { makePng, tempFile } from '../lib/png.js';
import { startServer } from '../lib/server.js';

const range = (from, to, f = (i) => `message ${i}`) => Array.from({ length: to - from + 1 }, (_, k) => f(from + k));

// Parses what crossed a WebSocket: a message may hold several frames, one per line.
function framesOf(data) {
  return String(data).split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

// The start of a HEIC file (an ISO-BMFF `ftyp` box with the brand heic): libmagic's image/heic.
function heic() {
  const ftyp = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.alloc(4), Buffer.from('mif1heic')]);
  return Buffer.concat([ftyp, Buffer.from([0, 0, 0, 16]), Buffer.from('free'), Buffer.alloc(8)]);
}

describe('catching up', () => {
  scenario('a tab signed in before the messages came gets every one of them, in order', { timeout: 90000 }, async (env) => {
    const a = await registerUser(env.server, 'alice');
    await parley.register(env.url, 'bob', PASSWORD);
    // bob's browser reaches the HTTP API but none of its WebSockets gets through until
    // `reachable`: the tab is offline from the moment it signed in.
    const context = await env.context();
    let reachable = false;
    const frames = []; // {dir: 'sent' | 'received', frame} of bob's sockets once they connect
    await context.routeWebSocket(/\/v1\/ws$/, (ws) => {
      if (!reachable) { ws.close(); return; }
      const server = ws.connectToServer();
      ws.onMessage((m) => { for (const frame of framesOf(m)) frames.push({ dir: 'sent', frame }); server.send(m); });
      server.onMessage((m) => { for (const frame of framesOf(m)) frames.push({ dir: 'received', frame }); ws.send(m); });
    });
    const bob = await env.page(context, 'bob');
    await env.signIn(bob, 'bob');
    await bob.getByTestId('connection-banner').waitFor({ state: 'visible' });
    // the tab's device starts at the pts of the POST /v1/devices answer
    const tab = await bob.evaluate(() => JSON.parse(sessionStorage.getItem('parley.tab')));
    assert.equal(typeof tab.cursor, 'number', `a cursor from the link's pts: ${JSON.stringify(tab)}`);

    const total = 50;
    const alice = await nodeClient(env.server, a);
    try {
      for (let i = 1; i <= total; i++) await alice.send('bob', `message ${i}`);
    } finally {
      alice.stop();
    }

    // the tab comes back (the same tab, so the same device and cursor)
    reachable = true;
    await bob.reload();
    const item = bob.getByTestId('chat-item').filter({ hasText: 'alice' });
    await item.getByTestId('unread-badge').filter({ hasText: String(total) }).waitFor();
    await openChat(bob, 'alice');
    await message(bob, `message ${total}`).waitFor();
    assert.deepEqual(await texts(bob), range(1, total), 'all of them, in order, none missing');
    assert.equal(await bob.getByTestId('older-messages').count(), 0);

    // on the wire: the first sync was from the saved cursor, and its answers held every
    // message as an update, in pts order; no snapshot
    const firstSync = frames.find((f) => f.dir === 'sent' && f.frame.type === 'sync');
    assert.ok(firstSync, 'bob synced');
    assert.equal(firstSync.frame.pts, tab.cursor);
    const syncIds = new Set(frames.filter((f) => f.dir === 'sent' && f.frame.type === 'sync').map((f) => f.frame.id));
    const answers = frames.filter((f) => f.dir === 'received' && f.frame.type === 'ok' && syncIds.has(f.frame.id)).map((f) => f.frame.result);
    assert.ok(answers.length > 0);
    assert.ok(answers.every((r) => !r.snapshot), 'no snapshot');
    // (by pts: a retry after the reload may have asked for some again)
    const byPts = new Map();
    for (const u of answers.flatMap((r) => r.updates || [])) if (u.kind === 'message') byPts.set(u.pts, u);
    const updates = [...byPts.values()].sort((x, y) => x.pts - y.pts);
    assert.deepEqual(updates.map((u) => u.message.body), range(1, total));
    assert.ok(updates[0].pts > tab.cursor);
  });

  scenario('a device without a cursor gets a snapshot: the older messages are counted and load', { timeout: 90000 }, async (env) => {
    const a = await registerUser(env.server, 'alice');
    await parley.register(env.url, 'bob', PASSWORD);
    // Three lines each: the 20 messages of the snapshot more than fill the window, so it is
    // the row at the top (not a short page) that offers the older ones.
    const body = (i) => `message ${i}\nsecond line\nthird line`;
    const total = 80;
    const alice = await nodeClient(env.server, a);
    try {
      for (let i = 1; i <= total; i++) await alice.send('bob', body(i));
    } finally {
      alice.stop();
    }
    // A device made without keeping its pts (or by a server before pts existed): the tab has
    // a token and no cursor, so its first sync is a snapshot.
    const s = await parley.login(env.url, 'bob', PASSWORD, { deviceName: 'no cursor' });
    const context = await env.context();
    await context.addInitScript((tab) => {
      if (!sessionStorage.getItem('parley.tab')) sessionStorage.setItem('parley.tab', JSON.stringify(tab));
    }, { user: s.user, deviceId: s.device_id, token: s.token, cursor: null });
    const bob = await env.page(context, 'bob');
    await bob.getByTestId('chat-list').waitFor();
    await openChat(bob, 'alice');
    const older = bob.getByTestId('older-messages');
    await older.filter({ hasText: '60 older messages' }).waitFor();
    assert.deepEqual(await texts(bob), range(61, total, body), 'the snapshot: the last 20');
    // the row loads a page (dispatched, not clicked: a click scrolls it into view first, and
    // reaching the top loads a page by itself)
    await bob.getByTestId('older-messages-button').dispatchEvent('click');
    await older.filter({ hasText: '10 older messages' }).waitFor();
    assert.deepEqual(await texts(bob), range(11, total, body));
    // scrolling up loads the rest
    await bob.getByTestId('message-scroller').evaluate((el) => { el.scrollTop = 0; });
    await bob.getByTestId('history-start').waitFor();
    assert.equal(await older.count(), 0);
    assert.deepEqual(await texts(bob), range(1, total, body));
    // the tab has a cursor now, and a reload continues from it
    const cursor = await bob.evaluate(() => JSON.parse(sessionStorage.getItem('parley.tab')).cursor);
    assert.equal(typeof cursor, 'number');
  });

  scenario('an upload of a type the server does not accept names the type', { config: '[media]\nallowed_types = ["image/png"]\n' }, async (env) => {
    const alice = await env.user('alice');
    await registerUser(env.server, 'bob');
    await startChat(alice, 'bob');
    await send(alice, 'hi');
    await message(alice, 'hi').waitFor();
    await alice.getByTestId('file-input').setInputFiles(tempFile('IMG_0001.heic', heic()));
    await alice.getByTestId('attachment-preview').filter({ hasText: 'IMG_0001.heic' }).waitFor();
    await alice.getByTestId('send-button').click();
    const refused = 'This server does not accept files of type image/heic.';
    await alice.getByTestId('send-error').filter({ hasText: refused }).waitFor();
    await alice.getByTestId('toast').filter({ hasText: refused }).waitFor();
    await alice.getByTestId('send-error').getByRole('button', { name: 'Discard' }).click();
    await alice.getByTestId('send-error').waitFor({ state: 'detached' });
    // a type on the list still goes
    await alice.getByTestId('file-input').setInputFiles(tempFile('sunset.png', makePng(64, 48)));
    await alice.getByTestId('send-button').click();
    await alice.getByTestId('message-image').waitFor();
  });
});

describe('catching up: the protocol module', { timeout: 60000 }, () => {
  const secret = crypto.randomBytes(32).toString('hex');
  let server;
  const clients = [];
  const track = (c) => { clients.push(c); return c; };

  // The test config ends in its [auth] table: this line belongs to it.
  before(async () => { server = await startServer({ config: `jwt_hs256_secret = "${secret}"\n` }); });
  after(async () => {
    for (const c of clients) c.stop();
    if (server) await server.stop();
  });

  test('a login\'s pts as the cursor: everything since arrives as updates, page after page', async () => {
    const a = await registerUser(server, 'alice');
    await parley.register(server.url, 'bob', PASSWORD);
    const s = await parley.login(server.url, 'bob', PASSWORD, { deviceName: 'later' });
    assert.equal(typeof s.pts, 'number');
    const alice = track(await nodeClient(server, a));
    const total = 150; // more than one sync page of 100
    for (let i = 1; i <= total; i++) await alice.send('bob', `m${i}`);
    const got = [];
    let snapshots = 0;
    const bob = track(new parley.ParleyClient({ server: server.url, token: s.token, WebSocket, cursor: s.pts }));
    bob.on('message', (m, info) => got.push([m.body, info.source]));
    bob.on('snapshot', () => snapshots++);
    const synced = waitEvent(bob, 'synced');
    bob.start();
    await synced;
    assert.equal(snapshots, 0);
    assert.deepEqual(got.map(([b]) => b), range(1, total, (i) => `m${i}`));
    assert.ok(got.every(([, source]) => source === 'sync'));
  });

  test('startAtFirstAuth: a JWT device\'s first auth answer is its first cursor', async () => {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'carol', device: 'phone', exp: Math.floor(Date.now() / 1000) + 600 })}`;
    const jwt = `${head}.${crypto.createHmac('sha256', secret).update(head).digest('base64url')}`;
    const carolSnapshots = [];
    const carol = track(new parley.ParleyClient({ server: server.url, token: jwt, WebSocket, startAtFirstAuth: true }));
    carol.on('snapshot', (r) => carolSnapshots.push(r));
    const synced = waitEvent(carol, 'synced');
    carol.start();
    await synced;
    assert.equal(carolSnapshots.length, 0, 'no snapshot');
    assert.equal(typeof carol.cursor, 'number');
    const d = await registerUser(server, 'dave');
    const dave = track(await nodeClient(server, d));
    const seen = waitEvent(carol, 'message', (m) => m.body === 'hello carol');
    await dave.send('carol', 'hello carol');
    await seen;
  });

  test('chats pages with next_cursor', async () => {
    const e = await registerUser(server, 'erin');
    const names = ['p1', 'p2', 'p3', 'p4', 'p5'];
    const erin = track(await nodeClient(server, e));
    for (const n of names) {
      await registerUser(server, `peer${n}`);
      await erin.send(`peer${n}`, `hi ${n}`);
    }
    const seen = [];
    let cursor;
    for (let page = 0; page < 10; page++) {
      const r = await erin.chats({ limit: 2, cursor });
      seen.push(...r.chats.map((c) => c.peer));
      if (!r.has_more) break;
      assert.equal(typeof r.next_cursor, 'string');
      cursor = r.next_cursor;
    }
    assert.deepEqual(seen, names.map((n) => `peer${n}`).reverse(), 'every chat once, newest first');
  });
});
