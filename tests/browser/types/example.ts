// Type-checked (tsc --noEmit) against web/parley-client.d.ts: the embedding example of
// docs/WEB.md, written the way an app would use the module.
import {
  ParleyClient, ParleyError, login, uploadMedia, type ChatSummary, type Message, type StateEvent,
  type SyncResult,
} from '../../../web/parley-client.js';

export async function embed(server: string, username: string, password: string): Promise<ParleyClient> {
  const session = await login(server, username, password, { deviceName: 'my app' });
  const client = new ParleyClient({
    server,
    token: session.token,
    // A new device starts at its login's pts: the first sync brings everything since.
    cursor: session.pts ?? null,
    backoff: { minMs: 500, maxMs: 20000 },
  });
  client.on('state', (s: StateEvent) => {
    if (s.state === 'waiting') console.log(`offline, retrying in ${s.retryInMs} ms: ${s.reason}`);
    if (s.state === 'closed' && s.code === 'token_revoked') console.log('signed out elsewhere');
  });
  client.on('message', (m: Message, info) => {
    const text: string = m.kind === 'media' ? m.media?.caption ?? '[file]' : m.body ?? '';
    console.log(`#${m.seq} ${m.sender}: ${text} (${info.source}, pts ${info.pts})`);
  });
  client.on('receipt', (r) => console.log(`${r.user} ${r.kind} chat ${r.chat_id} up to ${r.seq}`));
  client.on('typing', (t) => console.log(`${t.user} ${t.state === 'start' ? 'typing' : 'stopped'}`));
  client.on('presence', (list) => list.forEach((p) => console.log(p.user, p.online ? 'online' : p.last_seen)));
  client.on('cursor', (pts: number) => localStorage.setItem('cursor', String(pts)));
  client.on('snapshot', (snap: SyncResult) => {
    for (const c of snap.chats ?? []) if (c.has_more) console.log(`chat ${c.chat_id}: ${c.older ?? 'some'} older messages`);
  });
  client.start();

  try {
    const ack = await client.send('bob', 'hello from my app');
    const seq: number = ack.seq;
    await client.markRead(ack.chat_id, seq);
    const page = await client.history({ chatId: ack.chat_id }, { beforeSeq: seq, limit: 20 });
    page.messages.forEach((m) => console.log(m.message_id));
    const list = await client.chats();
    console.log(list.unread_total, list.chats[0]?.peer_read_seq);
    const all: ChatSummary[] = [...list.chats];
    for (let next = list.next_cursor; list.has_more && next;) {
      const more = await client.chats({ limit: 100, cursor: next });
      all.push(...more.chats);
      next = more.has_more ? more.next_cursor : undefined;
    }
    const group = await client.groupCreate('team', ['bob', 'carol']);
    const info = await client.groupInfo(group.chat.chat_id);
    info.members?.forEach((m) => console.log(m.user, m.role));
    const file = new Blob(['hi'], { type: 'text/plain' });
    const up = await uploadMedia(server, session.token, file, { onProgress: (sent, total) => console.log(sent / total) });
    await client.sendMedia(group.chat.chat_id, { id: up.id, name: 'hi.txt' });
    await client.typing('bob', 'start');
    const presence = await client.presenceSubscribe(['bob']);
    console.log(presence[0]?.online);
    const raw = await client.request<{ ts: number }>('ping');
    console.log(raw.ts);
  } catch (err) {
    if (err instanceof ParleyError && err.code === 'rate_limited') console.log('later', err.retryAfterMs);
    else throw err;
  }
  return client;
}

// A JWT's device is created by its first auth: that answer's pts is its first cursor.
export function embedJwt(server: string, jwt: string, savedCursor: number | null): ParleyClient {
  return new ParleyClient({ server, token: jwt, cursor: savedCursor, startAtFirstAuth: savedCursor === null });
}
